#!/usr/bin/env bash
# Makes the speaker test sound (crates/devices/assets/speaker-test.opus): a short spoken
# phrase, because the echo canceller learns the room's delay from speech-like sound and
# not from chimes or melodies (measured: 30-45 dB removed from speech, 5-7 dB from a
# harmonic melody). espeak-ng speaks it, sox resamples it, our Opus encoder packs it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
espeak-ng -v fr+f3 -s 150 -w "$tmp/voice.wav" \
  "Bonjour ! Ceci est le test du haut-parleur. Si vous entendez cette voix, le son fonctionne."
sox "$tmp/voice.wav" -r 48000 -c 1 -b 16 -e signed -t raw "$tmp/voice.raw" norm -6 pad 0.05 0.2
mkdir -p crates/devices/assets
cargo run -q -p estrade-media --example opus_clip -- "$tmp/voice.raw" crates/devices/assets/speaker-test.opus
