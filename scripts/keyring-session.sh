#!/usr/bin/env bash
# Runs a command on a private D-Bus session with gnome-keyring's Secret Service unlocked,
# in a throwaway home, so tests and the headless demo use a real keychain without touching
# the user's. Usage: scripts/keyring-session.sh COMMAND [ARGS...]
set -euo pipefail
if [ -z "${ESTRADE_IN_KEYRING_SESSION:-}" ]; then
  export ESTRADE_IN_KEYRING_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi
KEYRING_HOME="$(mktemp -d)"
trap 'kill "$KEYRING_PID" 2>/dev/null || true; rm -rf "$KEYRING_HOME"' EXIT
export XDG_DATA_HOME="$KEYRING_HOME/data"
mkdir -p "$XDG_DATA_HOME"
# A non-empty password: with an empty one gnome-keyring waits for a GUI prompt.
printf 'estrade-test-keyring' | HOME="$KEYRING_HOME" gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
KEYRING_PID=$!
for _ in $(seq 1 50); do
  busctl --user status org.freedesktop.secrets >/dev/null 2>&1 && break
  dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ListNames 2>/dev/null | grep -q org.freedesktop.secrets && break
  sleep 0.1
done
"$@"
