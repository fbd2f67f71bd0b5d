#!/usr/bin/env bash
# The benchmarks (crates/bench): Estrade's engine and the libwebrtc reference (LiveKit's
# Python SDK) in the same run through a livekit-server of their own on loopback. Prints a
# table of p50/p95 against the issue's targets. ESTRADE_BENCH_JOINS / ESTRADE_BENCH_SECONDS
# change the sample sizes; ESTRADE_BENCH_PROFILE=release measures a release build;
# ESTRADE_BENCH_ONLY=devices runs only the device rows (costs, echo, device path);
# ESTRADE_BENCH_ONLY=faults only the fault rows (loss, jitter, delay, a rate cap;
# ESTRADE_BENCH_FAULTS=loss,jitter: only the profiles whose name has "loss" or "jitter" in it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"
"$ESTRADE_ROOT/scripts/setup.sh"
export ESTRADE_LIVEKIT_PORT="${ESTRADE_BENCH_LIVEKIT_PORT:-27880}"
export ESTRADE_LIVEKIT_URL="ws://127.0.0.1:$ESTRADE_LIVEKIT_PORT"
trap '"$ESTRADE_ROOT/scripts/livekit.sh" stop || true; "$ESTRADE_ROOT/scripts/pulse.sh" stop || true' EXIT
"$ESTRADE_ROOT/scripts/livekit.sh" start
# The virtual audio devices (echo and device rows), fresh.
"$ESTRADE_ROOT/scripts/pulse.sh" stop
export "$("$ESTRADE_ROOT/scripts/pulse.sh" start)"
profile=() out=debug
[ "${ESTRADE_BENCH_PROFILE:-dev}" = release ] && profile=(--release) out=release
# The CPU/memory scenario runs estrade-cli as a child process, next to the bench binary:
# both built in one invocation, so their dependencies are built once with one feature set.
cargo build --quiet --locked "${profile[@]}" -p estrade-cli -p estrade-bench
"$CARGO_TARGET_DIR/$out/estrade-bench"
