"""libwebrtc's audio processing module (LiveKit's Python SDK carries it) run on a recorded
call, as the reference for Estrade's echo figures. The recording comes from crates/bench:
the far end as the speakers were given it (render), the microphone (capture), both 48 kHz
mono f32 in 10 ms frames, and for each capture frame how many render frames had been
handed over before it and the stream delay hint then (schedule: two u32 per frame).
Writes the processed capture frames (f32) to --out, in the same interleaving as live.
"""

import argparse
import array

from livekit import rtc

FRAME = 480


def frames(path):
    data = array.array("f")
    with open(path, "rb") as f:
        data.frombytes(f.read())
    return [data[i : i + FRAME] for i in range(0, len(data) - FRAME + 1, FRAME)]


def to_frame(samples):
    pcm = array.array("h", (max(-32768, min(32767, int(s * 32768.0))) for s in samples))
    return rtc.AudioFrame(pcm.tobytes(), 48_000, 1, FRAME)


def main():
    args = argparse.ArgumentParser()
    for name in ("--render", "--capture", "--schedule", "--out"):
        args.add_argument(name, required=True)
    for stage in ("--aec", "--ns", "--agc", "--hpf"):
        args.add_argument(stage, action="store_true")
    opts = args.parse_args()
    apm = rtc.AudioProcessingModule(
        echo_cancellation=opts.aec,
        noise_suppression=opts.ns,
        high_pass_filter=opts.hpf,
        auto_gain_control=opts.agc,
    )
    render, capture = frames(opts.render), frames(opts.capture)
    schedule = array.array("I")
    with open(opts.schedule, "rb") as f:
        schedule.frombytes(f.read())
    out = array.array("f")
    fed = 0
    for k, mic in enumerate(capture):
        renders_before, delay_ms = schedule[2 * k], schedule[2 * k + 1]
        while fed < min(renders_before, len(render)):
            apm.process_reverse_stream(to_frame(render[fed]))
            fed += 1
        if opts.aec:
            apm.set_stream_delay_ms(int(delay_ms))
        frame = to_frame(mic)
        apm.process_stream(frame)
        pcm = array.array("h")
        pcm.frombytes(bytes(frame.data))
        out.extend(s / 32768.0 for s in pcm)
    with open(opts.out, "wb") as f:
        f.write(out.tobytes())


if __name__ == "__main__":
    main()
