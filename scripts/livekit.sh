#!/usr/bin/env bash
# Starts, stops or reports the local livekit-server (v1.13.5, loopback only, devkey/secret).
#   scripts/livekit.sh start|stop|kill|status   (kill: SIGKILL, a crash, for fault tests)
# ESTRADE_LIVEKIT_PORT (default 7880) picks the signalling port; ICE uses UDP port+2 and
# TCP port+1, so the demo (7880) and the tests (17880) can run side by side.
# ESTRADE_LIVEKIT_REDIS (host:port) makes the node one of a cluster sharing that Redis
# (scripts/redis.sh); nodes of a cluster differ by their port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PORT="${ESTRADE_LIVEKIT_PORT:-7880}"
RUN="$ESTRADE_CACHE/run/livekit-$PORT"
PIDFILE="$RUN/pid"
LOG="$RUN/livekit.log"
BIN="$ESTRADE_BIN/livekit-server-$LIVEKIT_VERSION"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { [ "$(curl -s --max-time 1 "http://127.0.0.1:$PORT/" 2>/dev/null)" = "OK" ]; }

start() {
  [ -x "$BIN" ] || die "livekit-server is not installed: run scripts/setup.sh"
  mkdir -p "$RUN"
  if running && ready; then log "livekit-server already running on 127.0.0.1:$PORT"; return; fi
  if ready; then die "port $PORT already answers but is not our livekit-server; set ESTRADE_LIVEKIT_PORT"; fi
  # Loopback only: signalling bound to 127.0.0.1, ICE candidates on 127.0.0.1 only, and no
  # public STUN lookups (see docs and the protocol brief, §8.2).
  cat > "$RUN/livekit.yaml" <<YAML
port: $PORT
bind_addresses: [127.0.0.1]
keys:
  devkey: secret
rtc:
  tcp_port: $((PORT + 1))
  udp_port: $((PORT + 2))
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: [127.0.0.1/32]
  # A subscriber whose link cannot carry video gets the sound, video paused (told to the
  # client as a stream state), rather than both broken; send-side estimation (TWCC),
  # which webrtc-rs answers. See docs/deploy.md.
  congestion_control:
    enabled: true
    allow_pause: true
    use_send_side_bwe: true
room:
  auto_create: true
  empty_timeout: 300
logging:
  level: info
YAML
  if [ -n "${ESTRADE_LIVEKIT_REDIS:-}" ]; then
    printf 'redis:\n  address: %s\n' "$ESTRADE_LIVEKIT_REDIS" >>"$RUN/livekit.yaml"
  fi
  nohup "$BIN" --config "$RUN/livekit.yaml" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 150); do
    if ready; then log "livekit-server ready on ws://127.0.0.1:$PORT (log: $LOG)"; return; fi
    running || { tail -20 "$LOG" >&2; die "livekit-server exited during start-up"; }
    sleep 0.2
  done
  tail -20 "$LOG" >&2
  die "livekit-server did not become ready in 30 s"
}

stop() {
  if running; then
    local pid; pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "livekit-server on port $PORT stopped"
  fi
  rm -f "$PIDFILE"
}

crash() {
  if running; then kill -9 "$(cat "$PIDFILE")" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  log "livekit-server on port $PORT killed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) crash ;;
  status) if running && ready; then echo "running on ws://127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|kill|status" >&2; exit 2 ;;
esac
