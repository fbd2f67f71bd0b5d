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

from livekit import rtc

RATE = 48_000
FRAME = 480  # 10 ms, what libwebrtc's audio path uses
PERIOD_US = 500_000
PULSE_US = 100_000
LOUD = 2_000
HYSTERESIS = 1_000


class PulseAnalyser:
    """Mirror of estrade_media::synthetic::PulseAnalyser."""

    def __init__(self):
        self.in_burst = False
        self.pos = 0
        self.last_loud = 0
        self.cycles = 0
        self.positive = False
        self.latencies_ms = []
        self.frequencies_hz = []

    def feed(self, samples, played_us):
        for i, s in enumerate(samples):
            loud = abs(s) > LOUD
            if not self.in_burst:
                if not loud:
                    continue
                self.in_burst = True
                self.pos = self.last_loud = self.cycles = 0
                self.positive = s > 0
                at_us = played_us + i * 1_000_000 // RATE
                self.latencies_ms.append((at_us % PERIOD_US) / 1000.0)
            self.pos += 1
            if loud:
                self.last_loud = self.pos
            if self.positive and s < -HYSTERESIS:
                self.positive = False
            elif not self.positive and s > HYSTERESIS:
                self.positive = True
                self.cycles += 1
            if self.pos - self.last_loud > RATE // 100:
                secs = self.last_loud / RATE
                if secs > 0.03:
                    self.frequencies_hz.append(self.cycles / secs)
                self.in_burst = False


def tone(freq, end_us, n):
    start_us = end_us - n * 1_000_000 // RATE
    out = bytearray(2 * n)
    for i in range(n):
        t_us = start_us + i * 1_000_000 // RATE
        in_period = t_us % PERIOD_US
        v = int(12_000 * math.sin(2 * math.pi * freq * in_period / 1e6)) if in_period < PULSE_US else 0
        out[2 * i : 2 * i + 2] = v.to_bytes(2, "little", signed=True)
    return bytes(out)


async def publish_bursts(source, freq, stop):
    next_end = time.monotonic() + FRAME / RATE
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_end - time.monotonic()))
        next_end += FRAME / RATE
        end_us = time.time_ns() // 1000
        frame = rtc.AudioFrame(tone(freq, end_us, FRAME), RATE, 1, FRAME)
        await source.capture_frame(frame)


async def listen(track, analyser):
    stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
    async for event in stream:
        analyser.feed(event.frame.data, time.time_ns() // 1000)


async def join_bench(times):
    """Joins `times` times: ms to connected (room.connect returned) and to the first frame
    of a remote microphone already publishing in the room."""
    connected, first_audio = [], []
    for _ in range(times):
        room = rtc.Room()
        got = asyncio.Event()
        tasks = []

        async def first_frame(track):
            async for _ in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
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
    args.add_argument("--join-bench", type=int, default=0)
    opts = args.parse_args()
    if opts.join_bench:
        return await join_bench(opts.join_bench)

    room = rtc.Room()
    heard = {}
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

    @room.on("participant_connected")
    def _joined(p):
        remote_seen.set()

    @room.on("track_subscribed")
    def _subscribed(track, publication, participant):
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            analyser = heard.setdefault(participant.identity, PulseAnalyser())
            tasks.append(asyncio.ensure_future(listen(track, analyser)))

    started = time.monotonic()
    await room.connect(os.environ["LK_URL"], os.environ["LK_TOKEN"])
    connected_ms = (time.monotonic() - started) * 1000
    if room.remote_participants:
        remote_seen.set()

    source = rtc.AudioSource(RATE, 1, queue_size_ms=50)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    stop = asyncio.Event()
    tasks.append(asyncio.ensure_future(publish_bursts(source, opts.freq, stop)))

    await asyncio.wait_for(remote_seen.wait(), timeout=20)
    await asyncio.sleep(1.0)
    if opts.say:
        await room.local_participant.send_text(opts.say, topic="lk.chat")
    await asyncio.sleep(max(0.0, opts.seconds - (time.monotonic() - started)))
    stop.set()

    print(json.dumps({
        "identity": room.local_participant.identity,
        "connected_ms": connected_ms,
        "heard": {k: {"latencies_ms": a.latencies_ms, "frequencies_hz": a.frequencies_hz} for k, a in heard.items()},
        "chat": chat,
    }), flush=True)
    await room.disconnect()
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # a clear line for the Rust test's failure message
        print(json.dumps({"error": repr(e)}), flush=True)
        sys.exit(1)
