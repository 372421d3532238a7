#!/usr/bin/env bash
# Builds a ComfyUI runtime for the integration tests in tests/comfyui/ (nothing here is needed by
# the pack itself, and nothing it makes belongs in this repository).
#
#   bash tests/comfyui/setup_comfyui.sh COMFYUI_DIR VENV_DIR [COMFYUI_GIT_DIR]
#
# COMFYUI_DIR      a checkout of Comfy-Org/ComfyUI (tested with v0.3.64, commit a125cd84); when it
#                  does not exist yet and COMFYUI_GIT_DIR (a clone, bare or not) is given, the
#                  files of its HEAD are extracted there (blobs missing from a partial clone are
#                  skipped: only one tokenizer file is affected).
# VENV_DIR         virtualenv made with --system-site-packages, so it uses the torch already
#                  installed for this project instead of downloading another one.
#
# torchvision/torchaudio: ComfyUI v0.3.64 imports both. They are installed with --no-deps at
# the versions built for the installed torch (torchvision X.Y = torch 2.(Y-15); torchaudio is
# capped at the newest release). PyPI ships only CUDA builds of them; next to a CPU-only torch
# their extension libraries miss libc10_cuda.so/libtorch_cuda.so, so small stand-in libraries
# (every CUDA entry point aborts; none is reached with --cpu) are built and preloaded from a
# .pth file in the venv. With a CUDA torch none of that is done.
set -euo pipefail
COMFY=${1:?COMFYUI_DIR}
VENV=${2:?VENV_DIR}
GITDIR=${3:-}

if [ ! -f "$COMFY/main.py" ]; then
  [ -n "$GITDIR" ] || { echo "no ComfyUI checkout at $COMFY and no COMFYUI_GIT_DIR given" >&2; exit 2; }
  mkdir -p "$COMFY"
  git --git-dir="$GITDIR" ls-tree -r HEAD | while read -r _mode type obj path; do
    [ "$type" = blob ] || continue
    mkdir -p "$COMFY/$(dirname "$path")"
    git --git-dir="$GITDIR" cat-file blob "$obj" > "$COMFY/$path" 2>/dev/null \
      || { echo "skipped missing blob: $path" >&2; rm -f "$COMFY/$path"; }
  done
fi

[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
PY="$VENV/bin/python"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

TORCH=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
CUDA=$("$PY" -c 'import torch; print(torch.version.cuda or "")')
MINOR=$(echo "$TORCH" | cut -d. -f2)
TV="0.$((MINOR + 15)).0"
TA="2.${MINOR}.0"
"$PY" -m pip install -q --no-deps "torchvision==$TV" || "$PY" -m pip install -q --no-deps torchvision
"$PY" -m pip install -q --no-deps "torchaudio==$TA" || "$PY" -m pip install -q --no-deps torchaudio

if [ -z "$CUDA" ]; then
  STUBS="$VENV/cuda_stubs"
  mkdir -p "$STUBS"
  cat > "$STUBS/stubs.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
static void die(const char *n) { fprintf(stderr, "CUDA stand-in called: %s\n", n); abort(); }
#define STUB(name) void name(void) { die(#name); }
STUB(_ZN2at4cuda26getCurrentDevicePropertiesEv)
STUB(_ZN3c104cuda14ExchangeDeviceEa)
STUB(_ZN3c104cuda14MaybeSetDeviceEa)
STUB(_ZN3c104cuda17getStreamFromPoolEba)
STUB(_ZN3c104cuda17getStreamFromPoolEia)
STUB(_ZN3c104cuda20getCurrentCUDAStreamEa)
STUB(_ZN3c104cuda20getDefaultCUDAStreamEa)
STUB(_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE)
STUB(_ZN3c104cuda29c10_cuda_check_implementationEiPKcS2_jb)
STUB(_ZN3c104cuda9GetDeviceEPa)
STUB(_ZN3c104cuda9SetDeviceEab)
STUB(_ZNK3c104cuda10CUDAStream11synchronizeEv)
STUB(_ZNK3c104cuda10CUDAStream5queryEv)
STUB(_ZNK3c104cuda10CUDAStream6streamEv)
STUB(aoti_torch_get_current_cuda_stream)
STUB(torch_c10_cuda_check_msg)
STUB(torch_c10_cuda_free_error_msg)
STUB(torch_cuda_stream_synchronize)
STUB(torch_get_cuda_stream_from_pool)
STUB(torch_set_current_cuda_stream)
signed char _ZN3c104cuda12device_countEv(void) { return 0; }
signed char _ZN3c104cuda14current_deviceEv(void) { return -1; }
void *_ZN3c104cuda20CUDACachingAllocator9allocatorE = 0;
CEOF
  for lib in libc10_cuda libtorch_cuda; do
    cc -shared -fPIC -O2 -Wl,-soname,$lib.so -o "$STUBS/$lib.so" "$STUBS/stubs.c"
  done
  cat > "$SITE/_cpu_cuda_stubs.py" <<PEOF
"""Preloads CPU stand-ins for libc10_cuda/libtorch_cuda (ComfyUI test runtime only)."""
import ctypes
import os

for _name in ("libc10_cuda.so", "libtorch_cuda.so"):
    _path = os.path.join("$STUBS", _name)
    if os.path.exists(_path):
        ctypes.CDLL(_path, mode=ctypes.RTLD_GLOBAL)
PEOF
  echo "import _cpu_cuda_stubs" > "$SITE/_cpu_cuda_stubs.pth"
fi

grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$COMFY/requirements.txt" > "$VENV/comfy-requirements.txt"
# requests: imported by app/frontend_management.py but missing from v0.3.64's requirements.txt
"$PY" -m pip install -q -r "$VENV/comfy-requirements.txt" requests

"$PY" - <<'PYEOF'
import torch, torchvision, torchaudio
from torchvision.ops import nms
keep = nms(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60.0]]), torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], keep
assert torchaudio.functional.resample(torch.zeros(1, 1600), 16000, 8000).shape[-1] == 800
print(f"ComfyUI runtime ready: torch {torch.__version__}, torchvision {torchvision.__version__}, torchaudio {torchaudio.__version__}")
PYEOF
echo "run the integration tests with: COMFYUI_PATH=$COMFY COMFYUI_PYTHON=$PY python -m pytest tests/comfyui -q"
