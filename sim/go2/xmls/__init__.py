"""Go2 MJCF data (collision-only go2.xml, BSD-3 LICENSE); a package so the wheel ships it."""
