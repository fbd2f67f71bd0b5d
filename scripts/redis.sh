#!/usr/bin/env bash
# Starts, stops or reports a Redis of the project's own on loopback (Debian's redis-server),
# the state a cluster of livekit-server nodes shares.
#   scripts/redis.sh start|stop|status      ESTRADE_REDIS_PORT (default 16379)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PORT="${ESTRADE_REDIS_PORT:-16379}"
RUN="$ESTRADE_CACHE/run/redis-$PORT"
PIDFILE="$RUN/pid"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = "PONG" ]; }

start() {
  command -v redis-server >/dev/null || die "redis-server is not installed: run scripts/setup.sh"
  mkdir -p "$RUN"
  if running && ready; then log "redis already running on 127.0.0.1:$PORT"; return; fi
  # Nothing persisted: a test cluster's state is thrown away with it.
  redis-server --bind 127.0.0.1 --port "$PORT" --dir "$RUN" --save "" --appendonly no \
    --daemonize yes --pidfile "$PIDFILE" --logfile "$RUN/redis.log" >/dev/null
  for _ in $(seq 1 50); do
    if ready; then log "redis ready on 127.0.0.1:$PORT"; return; fi
    sleep 0.1
  done
  tail -20 "$RUN/redis.log" >&2
  die "redis did not become ready"
}

stop() {
  if running; then
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$PIDFILE")" 2>/dev/null || true
    log "redis on port $PORT stopped"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running && ready; then echo "running on 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
