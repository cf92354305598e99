"""The trot's speed limit inside the action box, from the Go2 MJCF's kinematics (sim/go2/reach.py)."""

import pytest

from sim.go2 import constants as C
from sim.go2.reach import stance_sweep, trot_speed_limit


def test_the_contract_box_and_clock_allow_the_bars_fast_row_and_the_old_box_did_not() -> None:
    """The bar asks vx ≥ 0.8 at a 1.0 command. With the 2 Hz clock at half stance, ±0.25 rad (the box before
    2026-12-02) tops out below that; the contract's ±0.35 reaches it only with ~88 % of the whole sweep."""
    old, now, wide = (stance_sweep(b, grid=61) for b in (0.25, C.ACTION_SCALE, 0.5))
    assert old["sweep"] < now["sweep"] < wide["sweep"]
    for r in (old, now, wide):
        assert r["foot_x_min"] < r["foot_x_default"] < r["foot_x_max"]
    assert trot_speed_limit(old["sweep"], 2.0) < 0.8 < trot_speed_limit(now["sweep"], 2.0) < 1.0
    assert trot_speed_limit(now["sweep"], 3.0) == pytest.approx(1.5 * trot_speed_limit(now["sweep"], 2.0))
    assert trot_speed_limit(wide["sweep"], 2.0) > 1.2
