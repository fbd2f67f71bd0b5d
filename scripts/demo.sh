#!/usr/bin/env bash
# The app in demo mode on the local stack: installs what is missing, starts livekit-server
# and the devserver (demo data in memory), and launches Estrade signed in as the demo
# trainer. Without a display it runs under Xvfb, saves a screenshot and prints its path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"

"$ESTRADE_ROOT/scripts/setup.sh"
log "building the UI and the app (the first build takes a while)"
(cd ui && npm run --silent build -- --logLevel warn)
cargo build --locked --quiet --workspace --bins

DEMO="$ESTRADE_CACHE/demo"
mkdir -p "$DEMO"
BACKEND_PORT="${ESTRADE_DEMO_BACKEND_PORT:-8787}"
export ESTRADE_LIVEKIT_PORT="${ESTRADE_LIVEKIT_PORT:-7880}"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$ESTRADE_ROOT/scripts/livekit.sh" stop || true
}
trap cleanup EXIT

"$ESTRADE_ROOT/scripts/livekit.sh" start
"$CARGO_TARGET_DIR/debug/devserver" --bind "127.0.0.1:$BACKEND_PORT" \
  --livekit-url "ws://127.0.0.1:$ESTRADE_LIVEKIT_PORT" >"$DEMO/devserver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$BACKEND_PORT/api/health" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$BACKEND_PORT/api/health" >/dev/null || { cat "$DEMO/devserver.log" >&2; die "the devserver did not start"; }
log "devserver ready on http://127.0.0.1:$BACKEND_PORT (demo accounts: docs/demo.md)"

APP=("$CARGO_TARGET_DIR/debug/estrade" --backend-url "http://127.0.0.1:$BACKEND_PORT" --email claire.martin@estrade.example)
# The demo trainer's password is public demo data (crates/devserver/src/seed.rs).
export ESTRADE_PASSWORD="estrade-demo"

if [ -n "${DISPLAY:-}" ] && [ -z "${ESTRADE_DEMO_HEADLESS:-}" ]; then
  log "launching Estrade as Claire Martin (lead trainer); close the window to stop the demo"
  "${APP[@]}"
  exit 0
fi

# No display: a virtual one, a private keychain, and a screenshot once the list is shown.
DISPLAY_NUM=$(( 90 + RANDOM % 100 ))
Xvfb ":$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
PIDS+=($!)
export DISPLAY=":$DISPLAY_NUM"
sleep 0.5
SHOT="$DEMO/estrade-demo.png"
rm -f "$SHOT"
log "no display: running under Xvfb $DISPLAY"
"$ESTRADE_ROOT/scripts/keyring-session.sh" bash -c '
  "$@" >"'"$DEMO"'/app.log" 2>&1 &
  app=$!
  for _ in $(seq 1 600); do
    grep -q "sessions listed" "'"$DEMO"'/app.log" && break
    kill -0 $app 2>/dev/null || break
    sleep 0.1
  done
  sleep 2  # let the list paint
  import -window root "'"$SHOT"'"
  kill $app 2>/dev/null; wait $app 2>/dev/null
  true' _ "${APP[@]}"
grep -q "sessions listed" "$DEMO/app.log" || { tail -30 "$DEMO/app.log" >&2; die "the app did not show the sessions list"; }
[ -s "$SHOT" ] || die "no screenshot was taken"
spread=$(convert "$SHOT" -format "%[fx:standard_deviation]" info:)
awk -v s="$spread" 'BEGIN { exit !(s > 0.05) }' || die "the screenshot looks blank ($SHOT)"
log "screenshot of the sessions list: $SHOT"
echo "$SHOT"
