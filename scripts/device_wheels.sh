#!/usr/bin/env bash
# Prepare (here, with registry access) the wheels the lent GPU machine lacks, split into 56 MiB pieces that fit (with the tree) the
# device tool's 64 MiB per call. Output: .device/parts/part_XX (git-ignored), one piece per device call.
#   bash scripts/device_wheels.sh [python-version (default 3.12, the GPU image's)]
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${1:-3.12}"
PIP="${PIP:-.venv/bin/pip}"
rm -rf .device/wheels .device/parts && mkdir -p .device/wheels .device/parts
# warp-lang (149 MB), MuJoCo (core + the studio package mujoco 4 requires) and mujoco-warp, their pure-Python
# deps, lcm (the deploy stack), and what the runner imports that the image may lack (tensorboard, tqdm).
"$PIP" download -q --dest .device/wheels --python-version "$PYV" --only-binary=:all: --no-deps \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 \
    warp-lang==1.19.0 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 mujoco-warp==4.0.0 \
    absl-py etils fsspec importlib_resources zipp typing_extensions glfw pyopengl \
    tqdm tensorboard tensorboard-data-server markdown werkzeug grpcio protobuf lcm
tar -C .device/wheels -cf .device/wheels.tar .
split -b 56M -d .device/wheels.tar .device/parts/part_
rm .device/wheels.tar
ls -l .device/parts
echo "device calls: one per piece, each with carry=[\".device/parts/part_NN\"] and the command"
echo "  bash scripts/device_check.sh stage part_NN   (the last one: ... stage part_NN && bash scripts/device_check.sh run)"
