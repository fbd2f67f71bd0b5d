# Sourced by every project script: one place for cache paths and pinned versions.
# Build outputs and installed tools live outside the clone so a fresh clone reuses them.
export ESTRADE_CACHE="${ESTRADE_CACHE:-$HOME/.cache/estrade}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ESTRADE_CACHE/target}"
export ESTRADE_BIN="$ESTRADE_CACHE/bin"
# The venv holding the LiveKit Python SDK (the interop peer).
export ESTRADE_PY="$ESTRADE_CACHE/py"
export LIVEKIT_VERSION="v1.13.5"
export TAURI_DRIVER_VERSION="2.1.0"
export PATH="$ESTRADE_BIN:$HOME/.cargo/bin:/usr/local/go/bin:$PATH"
ESTRADE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ESTRADE_ROOT
mkdir -p "$ESTRADE_CACHE" "$ESTRADE_BIN"

log() { printf '\033[1m[estrade]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[estrade] error:\033[0m %s\n' "$*" >&2; exit 1; }
