#!/usr/bin/env bash
# Installs what is missing, idempotently and quietly once done:
# Debian packages, livekit-server (Go), tauri-driver (cargo), npm packages for ui/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

APT_PACKAGES=(
  # build: Tauri/WebKitGTK, TLS-free (rustls) so no libssl; cmake builds the bundled libopus;
  # libvpx for VP8; nasm for OpenH264's assembly (H.264 about twice as fast with it)
  build-essential pkg-config libwebkit2gtk-4.1-dev cmake libvpx-dev nasm
  # devices: ALSA headers for cpal, libclang for nokhwa's V4L2 bindings (bindgen)
  libasound2-dev libclang-dev
  # run and test: a window without a display, WebDriver, screenshots
  xvfb webkit2gtk-driver imagemagick
  # a real audio path without sound hardware: user-mode PulseAudio with virtual devices,
  # speech for the echo tests (espeak-ng), sox to convert and measure
  pulseaudio pulseaudio-utils libasound2-plugins sox espeak-ng
  # the real keychain: Secret Service from gnome-keyring on a private D-Bus
  gnome-keyring dbus dbus-user-session libsecret-tools
  # fault tests: network cuts and loss (nftables), namespaces (iproute2); a LiveKit cluster
  # shares its state in Redis
  nftables iproute2 redis-server
  # misc used by scripts
  curl procps
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cargo-fuzz and the nightly toolchain it needs, for scripts/fuzz.sh.
if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (for cargo-fuzz)"
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if ! command -v cargo-fuzz >/dev/null; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi

# livekit-server, built from source by the Go toolchain, pinned.
LK="$ESTRADE_BIN/livekit-server-$LIVEKIT_VERSION"
if [ ! -x "$LK" ]; then
  command -v go >/dev/null || die "Go is required to build livekit-server"
  log "building livekit-server $LIVEKIT_VERSION with go install (a few minutes, once)"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
  mv "$tmp/server" "$LK"
  rmdir "$tmp"
fi

# tauri-driver: the WebDriver bridge for the desktop end-to-end test.
if ! "$ESTRADE_BIN/tauri-driver" --help >/dev/null 2>&1; then
  log "installing tauri-driver $TAURI_DRIVER_VERSION"
  cargo install --quiet --locked --root "$ESTRADE_CACHE/cargo-install" "tauri-driver" --version "=$TAURI_DRIVER_VERSION"
  ln -sf "$ESTRADE_CACHE/cargo-install/bin/tauri-driver" "$ESTRADE_BIN/tauri-driver"
fi

# The official LiveKit Python SDK (libwebrtc inside its wheel): the reference peer for interop
# tests and benchmarks, in a venv of our own, reinstalled only when the pins change.
req="$ESTRADE_ROOT/tests/interop/requirements.txt"
stamp="$ESTRADE_PY/.estrade-requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  log "installing the LiveKit Python SDK ($(grep -v '^#' "$req" | tr '\n' ' '))"
  python3 -m venv "$ESTRADE_PY" || die "python3 with the venv module is required"
  "$ESTRADE_PY/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi

# npm packages for the UI, reinstalled only when the lockfile changed.
if [ -f "$ESTRADE_ROOT/ui/package-lock.json" ]; then
  stamp="$ESTRADE_ROOT/ui/node_modules/.estrade-lock"
  if ! cmp -s "$ESTRADE_ROOT/ui/package-lock.json" "$stamp" 2>/dev/null; then
    log "installing npm packages (ui/)"
    (cd "$ESTRADE_ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$ESTRADE_ROOT/ui/package-lock.json" "$stamp"
  fi
fi
