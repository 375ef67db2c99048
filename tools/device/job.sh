#!/bin/bash
# On the device machine: unpack the carried GL libraries, wheels and datasets, then run run.py.
# Usage (from the repo root): RES=$OUT bash tools/device/job.sh ae_steps=5054 dyn_steps=2897 ...
set -x
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD MINARI_DATASETS_PATH=/tmp/minari MUJOCO_GL=egl PYTHONUNBUFFERED=1
mkdir -p /tmp/minari && tar xJf .gpu/clevr-data.tar.xz -C /tmp/minari
nvidia-smi --query-gpu=name,memory.used --format=csv
python3 tools/device/run.py "$@"
