#!/usr/bin/env bash
# Every test and lint, against the real stack: installs what is missing, builds the UI,
# checks formatting and lints, runs the UI tests, starts livekit-server and a virtual
# display, and runs all cargo tests (including the real-stack ones) on a private keychain.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"

step() { log "── $* ($(date +%T))"; }

step "setup"
"$ESTRADE_ROOT/scripts/setup.sh"

step "UI build (embedded into the app at compile time)"
(cd ui && npm run --silent build -- --logLevel warn)

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

step "svelte-check"
(cd ui && npm run --silent check)

step "vitest"
(cd ui && npm test --silent)

step "fuzz, briefly (signal frames, data packets, backend answers, jitter buffer: 25 s each)"
"$ESTRADE_ROOT/scripts/fuzz.sh" 25

step "local stack: livekit-server, PulseAudio with virtual devices, a virtual display"
export ESTRADE_LIVEKIT_PORT="${ESTRADE_TEST_LIVEKIT_PORT:-17880}"
export ESTRADE_LIVEKIT_URL="ws://127.0.0.1:$ESTRADE_LIVEKIT_PORT"
XVFB_PID=""
cleanup() {
  "$ESTRADE_ROOT/scripts/livekit.sh" stop || true
  "$ESTRADE_ROOT/scripts/pulse.sh" stop || true
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
  pkill -f "$CARGO_TARGET_DIR/debug/estrade" 2>/dev/null || true
}
trap cleanup EXIT
"$ESTRADE_ROOT/scripts/livekit.sh" start
# A fresh audio server each run: tests load and unload its devices.
"$ESTRADE_ROOT/scripts/pulse.sh" stop
export "$("$ESTRADE_ROOT/scripts/pulse.sh" start)"
if [ -z "${DISPLAY:-}" ] || [ -n "${CI:-}" ]; then
  DISPLAY_NUM=$(( 90 + RANDOM % 100 ))
  Xvfb ":$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  XVFB_PID=$!
  export DISPLAY=":$DISPLAY_NUM"
  sleep 0.5
  kill -0 "$XVFB_PID" 2>/dev/null || die "Xvfb did not start on $DISPLAY"
fi

step "cargo test (unit, devserver API, backend client, keychain, LiveKit join, session signalling, engine: WebRTC chat, audio, renegotiation, reconnection, network cuts and faults (nftables, crates/netfault), a capped uplink, Python SDK interop, devices on PulseAudio, CLI incl. a student on a 150 kbit/s link, desktop end-to-end)"
"$ESTRADE_ROOT/scripts/keyring-session.sh" \
  cargo test --workspace --locked -- --include-ignored

step "all tests passed"
