#!/usr/bin/env bash
# Fuzzes what others send us (cargo-fuzz, nightly): signal frames, data packets and chat
# reassembly, backend answers, the audio jitter buffer. Seeds come from fuzz/seeds.py
# (LiveKit's own protocol types); what the fuzzer finds stays outside the clone.
#   scripts/fuzz.sh [seconds per target, default 25] [target…]
# The test command runs it briefly; a long run: scripts/fuzz.sh 3600
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT/fuzz"

SECONDS_EACH="${1:-25}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(signal_frames data_packets backend_json jitter_buffer)
WORK="$ESTRADE_CACHE/fuzz"
# Its own target dir: fuzz builds are instrumented and must not replace the app's.
export CARGO_TARGET_DIR="$ESTRADE_CACHE/fuzz-target"
mkdir -p "$WORK"

"$ESTRADE_PY/bin/python" seeds.py "$WORK/seeds"
log "building the fuzz targets (nightly)"
cargo +nightly fuzz build --sanitizer none
for target in "${TARGETS[@]}"; do
  mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
  log "fuzzing $target for ${SECONDS_EACH}s"
  # New inputs go to the first directory (outside the clone); the seeds are read only.
  cargo +nightly fuzz run --sanitizer none "$target" \
    "$WORK/corpus/$target" "$WORK/seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 2>"$WORK/$target.log" \
    || { tail -40 "$WORK/$target.log" >&2; die "fuzzing $target found a failure (artifacts: $WORK/artifacts/$target)"; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/$target.log" | tr '\n' ' ' >&2
  echo >&2
done
log "fuzzing passed"
