"""Seed inputs for the fuzz targets, built with the protocol types of LiveKit's own Python
SDK (what a v1.13 server and its SDKs put on the wire): a join's worth of signal frames,
chat as the SDKs send it, backend answers as the devserver gives them, RTP-like jitter
input. Each target's input format is in fuzz_targets/common.rs (records of
[kind, delay ms, length LE16, bytes]).

    python fuzz/seeds.py fuzz/seeds      (scripts/fuzz.sh does it)
"""

import json
import os
import struct
import sys

from livekit.protocol import models, rtc


def record(kind, delay_ms, payload):
    return bytes([kind, delay_ms]) + struct.pack("<H", len(payload)) + payload


def participant(sid, identity, tracks=()):
    p = models.ParticipantInfo(sid=sid, identity=identity, name=identity, version=2,
                               state=models.ParticipantInfo.ACTIVE)
    p.permission.can_publish = True
    p.permission.can_subscribe = True
    p.permission.can_publish_data = True
    for t in tracks:
        p.tracks.append(t)
    return p


def signal(**message):
    return rtc.SignalResponse(**message).SerializeToString()


def signal_seeds():
    mic = models.TrackInfo(sid="TR_mic", type=models.AUDIO, source=models.TrackSource.MICROPHONE, name="microphone")
    cam = models.TrackInfo(sid="TR_cam", type=models.VIDEO, source=models.TrackSource.CAMERA, width=1280, height=720, mime_type="video/VP8")
    update = signal(update=rtc.ParticipantUpdate(participants=[participant("PA_b", "3", [mic, cam])]))
    offer = signal(offer=rtc.SessionDescription(type="offer", sdp="v=0\r\n", id=1))
    trickle = signal(trickle=rtc.TrickleRequest(candidateInit='{"candidate":"candidate:1 1 udp 1 127.0.0.1 7882 typ host","sdpMid":"0"}', target=rtc.SUBSCRIBER))
    mute = signal(mute=rtc.MuteTrackRequest(sid="TR_x", muted=True))
    published = signal(track_published=rtc.TrackPublishedResponse(cid="microphone-1", track=mic))
    leave = signal(leave=rtc.LeaveRequest(reason=models.DisconnectReason.STATE_MISMATCH, action=rtc.LeaveRequest.RECONNECT))
    reconnect = signal(reconnect=rtc.ReconnectResponse(last_message_seq=4))
    pong = signal(pong_resp=rtc.Pong(last_ping_timestamp=1_790_000_000_000, timestamp=1_790_000_000_010))
    speakers = signal(speakers_changed=rtc.SpeakersChanged(speakers=[models.SpeakerInfo(sid="PA_b", level=0.7, active=True)]))
    refused = signal(request_response=rtc.RequestResponse(reason=rtc.RequestResponse.NOT_ALLOWED, message="no"))
    kinds = {
        "roster": [record(7, 0, update), record(7, 50, speakers), record(7, 10, mute)],
        "negotiation": [record(7, 0, offer), record(7, 5, trickle), record(7, 5, published), record(7, 200, pong)],
        "resume": [record(0, 0, b""), record(7, 0, reconnect), record(7, 10, update), record(2, 0, b"")],
        "full": [record(0, 0, b""), record(7, 0, leave), record(7, 0, update), record(2, 0, b"")],
        "refused": [record(7, 0, refused), record(1, 250, b""), record(7, 0, leave)],
    }
    return {name: b"".join(rs) for name, rs in kinds.items()}


def data(**value):
    p = models.DataPacket(participant_identity="2", participant_sid="PA_a", **value)
    return p


def data_seeds():
    def packet(seq, **value):
        p = data(**value)
        p.sequence = seq
        return p.SerializeToString()
    header = models.DataStream.Header(stream_id="s-1", timestamp=1_790_000_000_000, topic="lk.chat",
                                      mime_type="text/plain", total_length=11)
    header.text_header.operation_type = models.DataStream.CREATE
    chunk = models.DataStream.Chunk(stream_id="s-1", chunk_index=0, content=b"Bonjour \xc3\xa0 ")
    trailer = models.DataStream.Trailer(stream_id="s-1")
    legacy = models.UserPacket(topic="lk-chat-topic", payload=json.dumps({"id": "s-2", "timestamp": 1, "message": "salut"}).encode())
    missed = models.UserPacket(topic="estrade.chat.missed", payload=b'{"v":1,"away_ms":12000}')
    return {
        "stream": b"".join(record(1, 0, packet(i + 1, **{k: v})) for i, (k, v) in enumerate(
            [("stream_header", header), ("stream_chunk", chunk), ("stream_trailer", trailer)])),
        "legacy": record(1, 0, packet(1, user=legacy)),
        "missed": record(0, 0, packet(1, user=missed)),
    }


def backend_seeds():
    return {
        "token": json.dumps({"access_token": "at_x", "refresh_token": "rt_x", "token_type": "Bearer", "expires_in": 900,
                             "user": {"id": 3, "email": "lea.dubois@estrade.example", "display_name": "Léa", "role": "student"}}).encode(),
        "error": json.dumps({"error": {"code": "invalid_credentials", "message": "nope"}}).encode(),
        "join": json.dumps({"url": "ws://127.0.0.1:7880", "token": "eyJ", "room_name": "r", "identity": "3", "role": "student", "expires_in": 600}).encode(),
    }


def jitter_seeds():
    out = b""
    for i in range(64):
        seq = (65530 + i) % 65536
        out += bytes([20, 1 + i % 7]) + struct.pack("<HI", seq, (i * 960) & 0xFFFFFFFF)
        if i % 5 == 0:
            out += bytes([20, 0]) + b"\0" * 6
    return {"steady": out}


def main():
    root = sys.argv[1]
    for target, seeds in [("signal_frames", signal_seeds()), ("data_packets", data_seeds()),
                          ("backend_json", backend_seeds()), ("jitter_buffer", jitter_seeds())]:
        os.makedirs(os.path.join(root, target), exist_ok=True)
        for name, content in seeds.items():
            with open(os.path.join(root, target, name), "wb") as f:
                f.write(content)


main()
