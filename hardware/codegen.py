"""Regenerate `hardware/msgs/` from `hardware/lcm/*.lcm` with the `lcm-gen` the lcm wheel ships.

    python -m hardware.codegen            # rewrite hardware/msgs
    python -m hardware.codegen --check    # exit 1 if hardware/msgs is stale (used by the tests)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["SCHEMA_DIR", "MSGS_DIR", "generate", "stale_files"]

SCHEMA_DIR = Path(__file__).resolve().parent / "lcm"
MSGS_DIR = Path(__file__).resolve().parent / "msgs"


def _lcm_gen(out: Path) -> Path:
    """Run lcm-gen (through the wheel's `lcm.run_gen`) into `out`; returns the generated package dir."""
    schemas = sorted(str(p) for p in SCHEMA_DIR.glob("*.lcm"))
    code = "import sys, lcm; sys.argv = ['lcm-gen'] + sys.argv[1:]; sys.exit(lcm.run_gen())"
    subprocess.run([sys.executable, "-c", code, "-p", "--ppath", str(out), *schemas], check=True)
    return out / "hardware" / "msgs"


def generate(dest: Path = MSGS_DIR) -> None:
    """Write the generated Python package to `dest` (only the `msgs` subpackage is copied)."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = _lcm_gen(Path(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(pkg, dest)


def stale_files() -> list[str]:
    """Generated files that differ from what the schemas produce now (empty when up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = _lcm_gen(Path(tmp))
        fresh = {p.name for p in pkg.glob("*.py")}
        have = {p.name for p in MSGS_DIR.glob("*.py")} if MSGS_DIR.exists() else set()
        diff = sorted(fresh ^ have)
        diff += [n for n in sorted(fresh & have) if not filecmp.cmp(pkg / n, MSGS_DIR / n, shallow=False)]
        return diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report stale generated files")
    args = ap.parse_args()
    if args.check:
        stale = stale_files()
        if stale:
            sys.exit(f"hardware/msgs is stale ({', '.join(stale)}); run python -m hardware.codegen")
        print("hardware/msgs is up to date")
    else:
        generate()
        print(f"generated {MSGS_DIR}")


if __name__ == "__main__":
    main()
