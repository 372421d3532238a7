#!/usr/bin/env bash
# Installs STM2PE Dance's dependencies on a fresh Debian/Ubuntu machine.
#   bash scripts/setup.sh         runtime only
#   bash scripts/setup.sh --dev   runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  # pyrender renders offscreen through OSMesa when there is no GPU/EGL
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq libosmesa6 libgl1) >/dev/null 2>&1 \
    || echo "warning: could not install libosmesa6 (apt); guidance rendering will not work" >&2
fi
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
python -m pip install -q --disable-pip-version-check -r "$req" -c constraints.txt
