#!/usr/bin/env bash
# A user-mode PulseAudio with virtual devices: a real audio path for the device tests and
# the echo benchmark, on machines without sound hardware.
#   scripts/pulse.sh start|stop|status|env
# `env` prints the variables a client needs (PULSE_SERVER); `start` prints them too.
#
# Devices (all 48 kHz):
#   sink   estrade_speaker   "Estrade speaker": what the app plays
#   sink   estrade_nearend   the room's talker plays here (tests write speech into it)
#   sink   estrade_micmix    where the microphone's sound is mixed (not for apps)
#   source estrade_mic       "Estrade microphone": micmix's monitor, remapped so it is a
#                            proper input and not a monitor
#   loopback estrade_speaker.monitor → micmix, 50 ms, −10 dB: the echo of the speaker in
#                            the room, as on a laptop without headphones
#   loopback estrade_nearend.monitor → micmix, 20 ms: the talker reaching the microphone
# The echo loopback keeps a fixed latency (adjust_time=0): every device here runs on the
# same clock, and the loopback's own rate controller otherwise slews the echo delay
# (measured: 0.2–0.3 ms per second, and once 40 ms in 10 s, which no echo canceller
# follows). A fixed delay is a laptop's speaker and microphone; drift is measured apart, in
# the bench. The talker's loopback keeps its controller: without it the talker's own path
# grew from 40 ms to 260 ms within a bench run.
# ESTRADE_PULSE_ECHO_MS / ESTRADE_PULSE_ECHO_DB change the echo path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN="$ESTRADE_CACHE/run/pulse"
export XDG_RUNTIME_DIR="$RUN/xdg"
SOCKET="$XDG_RUNTIME_DIR/pulse/native"
export PULSE_SERVER="unix:$SOCKET"
PIDFILE="$RUN/pid"
ECHO_MS="${ESTRADE_PULSE_ECHO_MS:-50}"
ECHO_DB="${ESTRADE_PULSE_ECHO_DB:--10}"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && pactl info >/dev/null 2>&1; }

start() {
  command -v pulseaudio >/dev/null || die "pulseaudio is not installed: run scripts/setup.sh"
  if running; then log "PulseAudio already running ($PULSE_SERVER)"; echo "PULSE_SERVER=$PULSE_SERVER"; return; fi
  mkdir -p "$RUN"
  rm -rf "$XDG_RUNTIME_DIR"; mkdir -p -m 700 "$XDG_RUNTIME_DIR"
  # -n: no default configuration (no hardware detection, no stream restore); as root it
  # warns that it runs in user mode, which is what we want. Anonymous clients: the socket
  # is in a private directory, and cpal's PulseAudio client sometimes failed the cookie
  # check ("AccessDenied", then cpal falls back to ALSA without a word).
  HOME="$RUN" nohup pulseaudio --daemonize=no --exit-idle-time=-1 --disallow-exit -n \
    --load="module-native-protocol-unix auth-anonymous=1" --load=module-always-sink \
    >"$RUN/pulse.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  pactl info >/dev/null 2>&1 || { tail -20 "$RUN/pulse.log" >&2; die "PulseAudio did not start"; }
  local q=(pactl load-module)
  "${q[@]}" module-null-sink sink_name=estrade_speaker rate=48000 \
    sink_properties=device.description=Estrade_speaker >/dev/null
  "${q[@]}" module-null-sink sink_name=estrade_nearend rate=48000 \
    sink_properties=device.description=Estrade_near_end >/dev/null
  "${q[@]}" module-null-sink sink_name=estrade_micmix rate=48000 \
    sink_properties=device.description=Estrade_mic_mix >/dev/null
  # Streams pinned to their devices: PulseAudio 15+ otherwise moves unpinned streams to
  # the default device, which here would feed the microphone back into itself.
  "${q[@]}" module-loopback source=estrade_speaker.monitor sink=estrade_micmix \
    latency_msec="$ECHO_MS" adjust_time=0 source_dont_move=true sink_dont_move=true \
    sink_input_properties=media.name=echo >/dev/null
  "${q[@]}" module-loopback source=estrade_nearend.monitor sink=estrade_micmix \
    latency_msec=20 source_dont_move=true sink_dont_move=true \
    sink_input_properties=media.name=talker >/dev/null
  "${q[@]}" module-remap-source master=estrade_micmix.monitor source_name=estrade_mic \
    source_properties=device.description=Estrade_microphone >/dev/null
  local echo_input
  echo_input="$(pactl list short sink-inputs | awk '$4 ~ /loopback/ {print $1; exit}')"
  pactl set-sink-input-volume "$echo_input" "${ECHO_DB}dB"
  pactl set-default-sink estrade_speaker
  pactl set-default-source estrade_mic
  log "PulseAudio ready: $PULSE_SERVER (log: $RUN/pulse.log)"
  echo "PULSE_SERVER=$PULSE_SERVER"
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    log "PulseAudio stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running: $PULSE_SERVER"; else echo "stopped"; exit 1; fi ;;
  env) echo "PULSE_SERVER=$PULSE_SERVER" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
