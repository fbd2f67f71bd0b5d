"""The libwebrtc reference peer: LiveKit's official Python SDK in a room with Estrade.

It publishes tone bursts locked to the wall clock (the same signal as Estrade's synthetic
microphone: a burst of --freq Hz during the first 100 ms of every 500 ms of Unix time),
listens to every remote microphone (onsets → mouth-to-ear, zero crossings → frequency),
sends one chat message on lk.chat and collects the ones it receives. At the end it prints
one JSON line with what it heard. The token comes in LK_TOKEN (never on the command line).
"""

import argparse
import asyncio
import json
import math
import os
import sys
import time

import numpy as np
from livekit import rtc

RATE = 48_000
FRAME = 480  # 10 ms, what libwebrtc's audio path uses
PERIOD_US = 500_000
PULSE_US = 100_000
LOUD = 2_000
HYSTERESIS = 1_000


class PulseAnalyser:
    """Mirror of estrade_media::synthetic::PulseAnalyser: onsets give the latency, the
    median cycle of each burst its frequency."""

    def __init__(self):
        self.in_burst = False
        self.pos = 0
        self.last_loud = 0
        self.positive = False
        self.previous = 0
        self.last_rise = None
        self.periods = []
        self.last_onset_us = None
        self.latencies_ms = []
        self.frequencies_hz = []

    def feed(self, samples, played_us):
        for i, s in enumerate(samples):
            previous, self.previous = self.previous, s
            loud = abs(s) > LOUD
            if not self.in_burst:
                if not loud:
                    continue
                self.in_burst = True
                self.pos = self.last_loud = 0
                self.last_rise = None
                self.periods = []
                self.positive = s > 0
                at_us = played_us + i * 1_000_000 // RATE
                # Sound again within half a period is the same burst, cut by concealment.
                if self.last_onset_us is None or at_us - self.last_onset_us >= PERIOD_US // 2:
                    self.last_onset_us = at_us
                    self.latencies_ms.append((at_us % PERIOD_US) / 1000.0)
            self.pos += 1
            if loud:
                self.last_loud = self.pos
            if self.positive and s < -HYSTERESIS:
                self.positive = False
            elif not self.positive and s > HYSTERESIS:
                self.positive = True
                rise = min(max((HYSTERESIS - previous) / (s - previous), 0.0), 1.0)
                at = self.pos - 1 + rise
                if self.last_rise is not None:
                    self.periods.append(at - self.last_rise)
                self.last_rise = at
            if self.pos - self.last_loud > RATE // 100:
                self.in_burst = False
                if self.last_loud / RATE > 0.03 and self.periods:
                    median = sorted(self.periods)[len(self.periods) // 2]
                    self.frequencies_hz.append(RATE / median)


# The stamped test pattern of estrade_media::synthetic_video, same layout and CRC.
COLS, ROWS = 12, 6


def crc8(v):
    crc = 0xA5
    for _ in range(8):
        crc ^= v & 0xFF
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        v >>= 8
    return crc


_backgrounds = {}


def background(w, h, frame_no):
    """The moving gradient of the Rust pattern. It repeats every 40 frames (4 px a frame,
    period 160): each of the 40 pictures is computed once, then copied."""
    key = (w, h, frame_no % 40)
    picture = _backgrounds.get(key)
    if picture is None:
        r, c = np.indices((h, w))
        picture = _backgrounds[key] = (40 + (r + c + (frame_no % 40) * 4) % 160).astype(np.uint8)
    return picture.copy()


def draw_stamp(y, frame_no, unix_ms):
    h, w = y.shape
    data = ((frame_no & 0xFFFFFF) << 40) | (unix_ms & 0xFF_FFFF_FFFF)
    bits = (data << 8) | crc8(data)
    cell = max(w // 40, 4)
    for i in range(COLS * ROWS):
        on = (bits >> (COLS * ROWS - 1 - i)) & 1
        cx, cy = cell * (1 + i % COLS), cell * (1 + i // COLS)
        y[cy:cy + cell, cx:cx + cell] = 235 if on else 16


def draw(w, h, frame_no, unix_ms):
    y = background(w, h, frame_no)
    draw_stamp(y, frame_no, unix_ms)
    return i420(y)


def i420(y):
    h, w = y.shape
    u = np.full((h // 2, w // 2), 110, np.uint8)
    v = np.full((h // 2, w // 2), 140, np.uint8)
    return y.tobytes() + u.tobytes() + v.tobytes()


def read_stamp(y):
    h, w = y.shape
    cell = max(w // 40, 4)
    if cell * (COLS + 1) > w or cell * (ROWS + 1) > h:
        return None
    bits = 0
    side = max(cell // 2, 1)
    for i in range(COLS * ROWS):
        cx, cy = cell * (1 + i % COLS) + cell // 4, cell * (1 + i // COLS) + cell // 4
        bits = (bits << 1) | int(y[cy:cy + side, cx:cx + side].mean() > 128)
    data = bits >> 8
    if crc8(data) != bits & 0xFF:
        return None
    return data >> 40, data & 0xFF_FFFF_FFFF


async def publish_pattern(source, w, h, stop):
    for k in range(40):  # the 40 backgrounds, before the clock starts
        background(w, h, k)
    n, period = 0, 1 / 30
    next_at = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += period
        y = background(w, h, n)
        # The capture time is taken once the picture exists, as a camera's would be.
        draw_stamp(y, n, time.time_ns() // 1_000_000)
        source.capture_frame(rtc.VideoFrame(w, h, rtc.VideoBufferType.I420, i420(y)))
        n += 1


async def watch(track, seen, count_only=False):
    async for event in rtc.VideoStream(track):
        frame = event.frame
        if count_only:
            seen["sizes"].add((frame.width, frame.height))
            seen["frames"].append(0)
            continue
        if frame.type != rtc.VideoBufferType.I420:
            frame = frame.convert(rtc.VideoBufferType.I420)
        y = np.frombuffer(frame.data, np.uint8, frame.width * frame.height).reshape(frame.height, frame.width)
        stamp = read_stamp(y)
        seen["sizes"].add((frame.width, frame.height))
        seen["heights"].append(frame.height)
        seen["shown_ms"].append(time.time_ns() // 1_000_000)
        if stamp is None:
            seen["unreadable"] += 1
        else:
            now_ms = time.time_ns() // 1_000_000
            seen["frames"].append(stamp[0])
            seen["glass_to_glass_ms"].append(((now_ms & 0xFF_FFFF_FFFF) - stamp[1]))


def tone(freq, end_us, n, continuous=False):
    start_us = end_us - n * 1_000_000 // RATE
    out = bytearray(2 * n)
    for i in range(n):
        t_us = start_us + i * 1_000_000 // RATE
        in_period = t_us % PERIOD_US
        v = int(12_000 * math.sin(2 * math.pi * freq * in_period / 1e6)) if continuous or in_period < PULSE_US else 0
        out[2 * i : 2 * i + 2] = v.to_bytes(2, "little", signed=True)
    return bytes(out)


async def publish_bursts(source, freq, stop, continuous=False):
    """Contiguous 10 ms frames of the wall-clock signal, as a microphone delivers them: a
    late loop sends the samples it missed (their age counts in the latency), up to 60 ms;
    beyond, it skips ahead as a device whose buffer overran."""
    step = FRAME / RATE
    next_end = time.monotonic() + step
    end_us = time.time_ns() // 1000 + FRAME * 1_000_000 // RATE
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_end - time.monotonic()))
        if time.monotonic() > next_end + 0.06:
            next_end, end_us = time.monotonic(), time.time_ns() // 1000
        frame = rtc.AudioFrame(tone(freq, end_us, FRAME, continuous), RATE, 1, FRAME)
        await source.capture_frame(frame)
        next_end += step
        end_us += FRAME * 1_000_000 // RATE


async def publish_file(source, path, stop):
    """A recording (raw 48 kHz mono s16le) in a loop, 10 ms at a time in real time."""
    with open(path, "rb") as f:
        pcm = f.read()
    step, size = FRAME / RATE, 2 * FRAME
    next_end, at = time.monotonic() + step, 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_end - time.monotonic()))
        chunk = pcm[at : at + size]
        if len(chunk) < size:
            at, chunk = 0, pcm[:size]
        at += size
        await source.capture_frame(rtc.AudioFrame(chunk, RATE, 1, FRAME))
        next_end += step


async def listen(track, analyser, levels):
    """Every frame to the analyser; with `levels` (a list), the RMS of each 100 ms in dBFS."""
    stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
    block = []
    async for event in stream:
        analyser.feed(event.frame.data, time.time_ns() // 1000)
        if levels is not None:
            block.extend(event.frame.data)
            if len(block) >= RATE // 10:
                mean = sum(s * s for s in block) / len(block) / 32768.0 ** 2
                levels.append(round(10 * math.log10(mean + 1e-12), 1))
                block = []


INBOUND_FIELDS = ("packets_received", "packets_lost", "concealed_samples", "silent_concealed_samples",
                  "total_samples_received", "concealment_events", "fec_packets_received", "nack_count",
                  "pli_count", "retransmitted_packets_received", "frames_decoded", "key_frames_decoded", "freeze_count", "frame_height")


async def sample_stats(track, identity, every, out):
    """libwebrtc's own counters for one remote track (its inbound-rtp), with the Unix time."""
    kind = "audio" if track.kind == rtc.TrackKind.KIND_AUDIO else "video"
    while True:
        await asyncio.sleep(every)
        try:
            reports = await track.get_stats()
        except Exception:
            continue
        for r in reports:
            if r.WhichOneof("stats") != "inbound_rtp":
                continue
            inbound = r.inbound_rtp
            sample = {"identity": identity, "kind": kind, "unix_ms": time.time_ns() // 1_000_000}
            for group in (inbound.received, inbound.inbound):
                for field in INBOUND_FIELDS:
                    if hasattr(group, field):
                        sample[field] = getattr(group, field)
            out.append(sample)


async def join_bench(times):
    """Joins `times` times: ms to connected (room.connect returned) and to the first audible
    frame of a remote microphone already publishing a steady tone in the room (NetEq plays
    silence before the first packet: those frames do not count)."""
    connected, first_audio = [], []
    for _ in range(times):
        room = rtc.Room()
        got = asyncio.Event()
        tasks = []

        async def first_frame(track):
            async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
                if max(abs(s) for s in event.frame.data) > LOUD:
                    got.set()
                    break

        @room.on("track_subscribed")
        def _subscribed(track, publication, participant):
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                tasks.append(asyncio.ensure_future(first_frame(track)))

        started = time.monotonic()
        await room.connect(os.environ["LK_URL"], os.environ["LK_TOKEN"])
        connected.append((time.monotonic() - started) * 1000)
        await asyncio.wait_for(got.wait(), timeout=20)
        first_audio.append((time.monotonic() - started) * 1000)
        await room.disconnect()
        for t in tasks:
            t.cancel()
        await asyncio.sleep(0.3)
    print(json.dumps({"connected_ms": connected, "first_audio_ms": first_audio}), flush=True)


async def main():
    args = argparse.ArgumentParser()
    args.add_argument("--freq", type=float, default=880.0)
    args.add_argument("--seconds", type=float, default=8.0)
    args.add_argument("--say", default="")
    args.add_argument("--continuous", action="store_true", help="a steady tone instead of bursts (nothing for DTX to skip)")
    args.add_argument("--join-bench", type=int, default=0)
    args.add_argument("--video", action="store_true", help="publish the stamped pattern too")
    args.add_argument("--video-codec", choices=["vp8", "h264"], default="vp8")
    args.add_argument("--simulcast", action="store_true")
    args.add_argument("--count-only", action="store_true", help="decode video but do not read stamps (CPU bench)")
    args.add_argument("--video-size", default="640x360")
    args.add_argument("--wav", help="publish this raw 48 kHz mono s16le recording (looped) instead of tone bursts")
    args.add_argument("--levels", action="store_true", help="report the level of what is heard, per 100 ms")
    args.add_argument("--mic", help="publish this device (libwebrtc's own audio device module, its processing on) instead of a synthetic microphone")
    args.add_argument("--speaker", help="play what is heard on this device (libwebrtc's audio device module; in SDK 1.2.1 it plays on the system default whatever is chosen)")
    args.add_argument("--listen-only", action="store_true", help="publish nothing")
    args.add_argument("--stats-every", type=float, default=0.0, help="sample libwebrtc's inbound-rtp counters of each remote track this often (seconds)")
    args.add_argument("--extra-tracks", type=int, default=0, help="a hostile peer: publish this many more microphones (tone bursts), beyond what any client does")
    args.add_argument("--say-at", action="append", default=[], metavar="SECONDS=TEXT",
                      help="say TEXT on lk.chat SECONDS after connecting (repeatable); whether the SDK took it is reported")
    args.add_argument("--flood", type=int, default=0, help="a hostile peer: send this many malformed chat packets (legacy topic, not JSON) as fast as it can, then say --say")

    opts = args.parse_args()
    if opts.join_bench:
        return await join_bench(opts.join_bench)

    # libwebrtc's own device path (its ADM, PulseAudio on Linux), chosen by device name.
    platform = None
    if opts.mic or opts.speaker:
        platform = rtc.PlatformAudio()
        def pick(devices, name):
            for d in devices:
                if d.name == name:
                    return d.id
            raise RuntimeError(f"no device {name!r} in {[d.name for d in devices]}")
        if opts.mic:
            platform.set_recording_device(pick(platform.recording_devices(), opts.mic))
        if opts.speaker:
            platform.set_playout_device(pick(platform.playout_devices(), opts.speaker))

    room = rtc.Room()
    heard = {}
    levels = {}
    watched = {}
    stats = []
    chat = []
    tasks = []
    remote_seen = asyncio.Event()

    def on_text(reader, identity):
        async def read():
            try:
                chat.append({"from": identity, "text": await reader.read_all(), "id": reader.info.stream_id})
            except Exception as e:  # reported, not swallowed
                chat.append({"from": identity, "error": repr(e)})
        tasks.append(asyncio.ensure_future(read()))

    room.register_text_stream_handler("lk.chat", on_text)

    connection = []

    @room.on("reconnecting")
    def _reconnecting():
        connection.append({"event": "reconnecting", "at_s": time.monotonic() - started})

    @room.on("reconnected")
    def _reconnected():
        connection.append({"event": "reconnected", "at_s": time.monotonic() - started})

    @room.on("participant_connected")
    def _joined(p):
        remote_seen.set()

    @room.on("track_subscribed")
    def _subscribed(track, publication, participant):
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            analyser = heard.setdefault(participant.identity, PulseAnalyser())
            level = levels.setdefault(participant.identity, []) if opts.levels else None
            tasks.append(asyncio.ensure_future(listen(track, analyser, level)))
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            seen = watched.setdefault(participant.identity, {"frames": [], "glass_to_glass_ms": [], "sizes": set(), "unreadable": 0, "heights": [], "shown_ms": []})
            seen["mime_type"] = publication.mime_type
            tasks.append(asyncio.ensure_future(watch(track, seen, opts.count_only)))
        if opts.stats_every:
            tasks.append(asyncio.ensure_future(sample_stats(track, participant.identity, opts.stats_every, stats)))

    started = time.monotonic()
    await room.connect(os.environ["LK_URL"], os.environ["LK_TOKEN"])
    connected_ms = (time.monotonic() - started) * 1000
    if room.remote_participants:
        remote_seen.set()

    if opts.mic:
        source = platform.create_audio_source(rtc.PlatformAudioOptions())
    else:
        source = rtc.AudioSource(RATE, 1, queue_size_ms=50)
    if not opts.listen_only:
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
    stop = asyncio.Event()
    if opts.mic or opts.listen_only:
        pass  # the device is the microphone, or nothing is sent
    elif opts.wav:
        tasks.append(asyncio.ensure_future(publish_file(source, opts.wav, stop)))
    else:
        tasks.append(asyncio.ensure_future(publish_bursts(source, opts.freq, stop, opts.continuous)))
    for i in range(opts.extra_tracks):
        extra = rtc.AudioSource(RATE, 1, queue_size_ms=50)
        extra_track = rtc.LocalAudioTrack.create_audio_track(f"extra-{i}", extra)
        await room.local_participant.publish_track(
            extra_track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        tasks.append(asyncio.ensure_future(publish_bursts(extra, opts.freq, stop)))
    if opts.video:
        vw, vh = (int(x) for x in opts.video_size.split("x"))
        video = rtc.VideoSource(vw, vh)
        camera = rtc.LocalVideoTrack.create_video_track("camera", video)
        await room.local_participant.publish_track(
            camera,
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                video_codec=rtc.VideoCodec.H264 if opts.video_codec == "h264" else rtc.VideoCodec.VP8,
                simulcast=opts.simulcast
            ),
        )
        tasks.append(asyncio.ensure_future(publish_pattern(video, vw, vh, stop)))

    await asyncio.wait_for(remote_seen.wait(), timeout=20)
    await asyncio.sleep(1.0)
    flooded_ms = None
    if opts.flood:
        t0 = time.monotonic()
        for i in range(opts.flood):
            await room.local_participant.publish_data(b"\xff not json %d" % i, reliable=True, topic="lk-chat-topic")
        flooded_ms = (time.monotonic() - t0) * 1000
    if opts.say:
        await room.local_participant.send_text(opts.say, topic="lk.chat")
    said = []

    async def say_at(at, text):
        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
        entry = {"text": text, "at_s": time.monotonic() - started}
        try:
            await room.local_participant.send_text(text, topic="lk.chat")
            entry["ok"] = True
        except Exception as e:  # the SDK refused it (reconnecting): reported
            entry["ok"] = False
            entry["error"] = repr(e)
        said.append(entry)

    for spec in opts.say_at:
        at, text = spec.split("=", 1)
        tasks.append(asyncio.ensure_future(say_at(float(at), text)))
    await asyncio.sleep(max(0.0, opts.seconds - (time.monotonic() - started)))
    stop.set()

    print(json.dumps({
        "identity": room.local_participant.identity,
        "connected_ms": connected_ms,
        "heard": {k: {"latencies_ms": a.latencies_ms, "frequencies_hz": a.frequencies_hz,
                      "levels_db": levels.get(k, [])} for k, a in heard.items()},
        "watched": {k: {**v, "sizes": sorted(v["sizes"])} for k, v in watched.items()},
        "chat": chat,
        "flooded_ms": flooded_ms,
        "said": said,
        "connection": connection,
        "stats": stats,
    }), flush=True)
    await room.disconnect()
    for t in tasks:
        t.cancel()
    if platform:
        if opts.mic:
            source.close()
        platform.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # a clear line for the Rust test's failure message
        print(json.dumps({"error": repr(e)}), flush=True)
        sys.exit(1)
