#!/usr/bin/env bash
# A long class in one process, to catch what grows: 4 CLI participants on a livekit-server
# of their own, each publishing tone bursts and a 640×360 VP8 camera, decoding the others'
# cameras and chatting every 5 s. Samples the process's memory (RSS), open files and
# threads every 30 s; after a warm-up, RSS may grow at most 5 % and files and threads not
# at all. Not part of the test command (it takes half an hour).
#   scripts/soak.sh [minutes, default 30] [warm-up minutes, default 5]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"

MINUTES="${1:-30}"
WARMUP="${2:-5}"
export ESTRADE_LIVEKIT_PORT="${ESTRADE_SOAK_LIVEKIT_PORT:-18100}"
RUN="$ESTRADE_CACHE/run/soak"
mkdir -p "$RUN"

"$ESTRADE_ROOT/scripts/setup.sh"
log "building estrade-cli (release)"
cargo build --release --locked --quiet -p estrade-cli
CLI="$CARGO_TARGET_DIR/release/estrade-cli"

BOT_PID=""; FEED_PID=""
cleanup() {
  [ -n "$FEED_PID" ] && kill "$FEED_PID" 2>/dev/null || true
  [ -n "$BOT_PID" ] && kill "$BOT_PID" 2>/dev/null || true
  "$ESTRADE_ROOT/scripts/livekit.sh" stop || true
}
trap cleanup EXIT
"$ESTRADE_ROOT/scripts/livekit.sh" start

rm -f "$RUN/commands"; mkfifo "$RUN/commands"
SECONDS_TOTAL=$((MINUTES * 60))
# The API secret of the local server only (scripts/livekit.sh: devkey/secret).
ESTRADE_API_SECRET=secret "$CLI" --url "ws://127.0.0.1:$ESTRADE_LIVEKIT_PORT" \
  --api-key devkey --room "soak-$(date +%s)" --bots 4 --tone 440 \
  --camera 640x360 --codec vp8 --watch --seconds "$SECONDS_TOTAL" \
  <"$RUN/commands" >"$RUN/events.jsonl" 2>"$RUN/stderr.log" &
BOT_PID=$!
( n=0; while sleep 5; do n=$((n + 1)); echo "say soak $n"; done ) >"$RUN/commands" &
FEED_PID=$!

sample() {
  local rss threads fds
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$BOT_PID/status")
  threads=$(awk '/^Threads/ {print $2}' "/proc/$BOT_PID/status")
  fds=$(ls "/proc/$BOT_PID/fd" | wc -l)
  echo "$rss $threads $fds"
}

printf '%8s %10s %8s %6s\n' "minute" "RSS (MiB)" "threads" "fds" | tee "$RUN/samples.txt"
base=""; peak_rss=0; peak_threads=0; peak_fds=0
elapsed=0
while [ "$elapsed" -lt "$SECONDS_TOTAL" ] && kill -0 "$BOT_PID" 2>/dev/null; do
  sleep 30; elapsed=$((elapsed + 30))
  kill -0 "$BOT_PID" 2>/dev/null || break
  read -r rss threads fds < <(sample)
  printf '%8.1f %10.1f %8d %6d\n' "$(awk "BEGIN {print $elapsed / 60}")" "$(awk "BEGIN {print $rss / 1024}")" \
    "$threads" "$fds" | tee -a "$RUN/samples.txt"
  if [ "$elapsed" -ge $((WARMUP * 60)) ]; then
    if [ -z "$base" ]; then base="$rss $threads $fds"; fi
    [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
    [ "$threads" -gt "$peak_threads" ] && peak_threads=$threads
    [ "$fds" -gt "$peak_fds" ] && peak_fds=$fds
  fi
done
wait "$BOT_PID" || die "the bots failed (see $RUN/stderr.log)"
BOT_PID=""
[ -n "$base" ] || die "the run ended before the warm-up was over"
read -r base_rss base_threads base_fds <<<"$base"
growth=$(awk "BEGIN {print ($peak_rss - $base_rss) * 100 / $base_rss}")
chats=$(grep -c '"chat_received"' "$RUN/events.jsonl" || true)
reconnects=$(grep -c '"reconnecting"' "$RUN/events.jsonl" || true)
printf 'after %s min of warm-up: RSS %.1f → peak %.1f MiB (%+.1f %%), threads %d → %d, fds %d → %d; %d chat messages received, %d reconnect attempts\n' \
  "$WARMUP" "$(awk "BEGIN {print $base_rss / 1024}")" "$(awk "BEGIN {print $peak_rss / 1024}")" "$growth" \
  "$base_threads" "$peak_threads" "$base_fds" "$peak_fds" "$chats" "$reconnects" | tee -a "$RUN/samples.txt"
ok=1
[ "$(awk "BEGIN {print ($growth <= 5)}")" = 1 ] || { log "RSS grew more than 5 %"; ok=0; }
[ "$peak_threads" -le "$base_threads" ] || { log "threads grew"; ok=0; }
[ "$peak_fds" -le "$base_fds" ] || { log "open files grew"; ok=0; }
[ "$ok" = 1 ] && log "soak passed" || die "soak failed (samples: $RUN/samples.txt)"
