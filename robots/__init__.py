"""Robot facts: the bottom layer every other package reads (numpy only, no MuJoCo, torch or LCM).

`robots.go2` holds what is true of the Unitree Go2 whatever runs it: joint names and order, joint ranges,
motor torque limits, the default pose and the PD gains the policy was trained with. The simulator
(`sim`), the hardware backends (`hardware`: the MuJoCo robot and the Go2 bridge) and the onboard
controller (`controllers`) import it; it imports none of them.
"""
