#!/usr/bin/env bash
# A long class in one process, to catch what grows: 4 CLI participants on a livekit-server
# of their own, each publishing tone bursts and a 640×360 VP8 camera, decoding the others'
# cameras and chatting every 5 s. Samples the process's memory (RSS), open files and
# threads every 30 s, and judges them after a warm-up (see check). Not part of the test
# command (it takes half an hour).
#   scripts/soak.sh [minutes, default 30] [warm-up minutes, default 5]
#   scripts/soak.sh check SAMPLES [warm-up minutes]    the verdict on a recorded run
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ESTRADE_ROOT"

# The verdict, from a samples file (also: scripts/soak.sh check FILE [warm-up minutes]).
# After the warm-up, RSS may grow at most 5 %; threads and open files may not grow from the
# first half of the run to the second (tokio's blocking pool settles at its own size, so a
# thread or two more early on is not a leak; more and more is).
check() {
  awk -v warmup="${WARMUP:-5}" '
    $1 !~ /^[0-9.]+$/ || $1 < warmup { next }
    { n++; minute[n] = $1; rss[n] = $2; threads[n] = $3; fds[n] = $4 }
    END {
      if (n < 4) { print "too few samples after the warm-up"; exit 1 }
      half = int(n / 2)
      for (i = 1; i <= n; i++) {
        if (rss[i] > peak) peak = rss[i]
        if (i <= half) { if (threads[i] > t1) t1 = threads[i]; if (fds[i] > f1) f1 = fds[i] }
        else { if (threads[i] > t2) t2 = threads[i]; if (fds[i] > f2) f2 = fds[i] }
      }
      growth = (peak - rss[1]) * 100 / rss[1]
      printf "after %s min of warm-up: RSS %.1f -> peak %.1f MiB (%+.1f %%); threads %d then %d, open files %d then %d (peaks, first and second half)\n", warmup, rss[1], peak, growth, t1, t2, f1, f2
      bad = 0
      if (growth > 5) { print "RSS grew more than 5 %"; bad = 1 }
      if (t2 > t1) { print "threads kept growing"; bad = 1 }
      if (f2 > f1) { print "open files kept growing"; bad = 1 }
      exit bad
    }' "$1" && log "soak passed" || die "soak failed (samples: $1)"
}

if [ "${1:-}" = check ]; then
  WARMUP="${3:-5}"
  check "$2"
  exit 0
fi

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
elapsed=0
while [ "$elapsed" -lt "$SECONDS_TOTAL" ] && kill -0 "$BOT_PID" 2>/dev/null; do
  sleep 30; elapsed=$((elapsed + 30))
  kill -0 "$BOT_PID" 2>/dev/null || break
  read -r rss threads fds < <(sample)
  printf '%8.1f %10.1f %8d %6d\n' "$(awk "BEGIN {print $elapsed / 60}")" "$(awk "BEGIN {print $rss / 1024}")" \
    "$threads" "$fds" | tee -a "$RUN/samples.txt"
done
wait "$BOT_PID" || die "the bots failed (see $RUN/stderr.log)"
BOT_PID=""
chats=$(grep -c '"chat_received"' "$RUN/events.jsonl" || true)
reconnects=$(grep -c '"reconnecting"' "$RUN/events.jsonl" || true)
log "$chats chat messages received, $reconnects reconnect attempts"
check "$RUN/samples.txt"
