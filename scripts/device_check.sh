#!/usr/bin/env bash
# The CUDA device check on the lent machine (see README "GPU device check").
#   bash scripts/device_check.sh stage part_NN   move a carried wheel piece into .device/stage (kept while warm)
#   bash scripts/device_check.sh run             reassemble, install into .device/site, run the check into $OUT
# Consecutive calls must follow each other within the machine's warm time (30 s), else the staged pieces
# are gone with the machine and the transfer starts again. The check itself is resumable (gpu_check.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"  # the GPU image's Python 3.12 with torch; PY=.venv/bin/python rehearses it here
case "${1:-}" in
  stage)
    mkdir -p .device/stage
    mv ".device/parts/$2" .device/stage/
    ls -l .device/stage ;;
  run)
    if [ ! -d .device/site ]; then
      cat .device/stage/part_* > /tmp/wheels.tar
      mkdir -p /tmp/wheels && tar -C /tmp/wheels -xf /tmp/wheels.tar
      "$PY" -m pip install -q --no-index --no-deps --target .device/site /tmp/wheels/*.whl
      # keep the image's own copies of anything it already has (protobuf for onnx, ...): drop ours
      "$PY" - <<'PY'
import importlib.metadata as md, pathlib, shutil
site = pathlib.Path(".device/site")
for info in site.glob("*.dist-info"):
    name = info.name.split("-")[0]
    try:
        md.distribution(name)  # resolved without .device/site on the path: the image has it
    except md.PackageNotFoundError:
        continue
    for line in (info / "RECORD").read_text().splitlines():
        f = site / line.split(",")[0]
        if f.is_file():
            f.unlink()
    shutil.rmtree(info, ignore_errors=True)
    print(f"using the image's {name}")
PY
    fi
    export PYTHONPATH="$PWD/.device/site:$PWD" PYTHONUNBUFFERED=1 MUJOCO_GL=egl
    OUTDIR="${OUT:-bench_out/gpu}"
    mkdir -p "$OUTDIR"
    "$PY" -m som_robot.bench gpu --out "$OUTDIR" "${@:2}" 2>&1 | tee -a "$OUTDIR/check.log" ;;
  *)
    echo "usage: $0 stage part_NN | run [bench gpu options]" >&2; exit 2 ;;
esac
