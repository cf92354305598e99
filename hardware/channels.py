"""Every LCM channel name, rate, mode code and the transport URL of the deploy chain, in one place.

The robot (MuJoCo or the physical bridge), the state estimator and the controller daemon all
import these names; nothing else spells a channel string.
"""

from __future__ import annotations

import enum
import os
import random
import socket
import subprocess

__all__ = [
    "JOINT_STATE", "IMU", "FOOT_CONTACT", "STATE_ESTIMATE", "JOINT_COMMAND", "JOYSTICK", "DAEMON_STATUS",
    "SIM_TRUTH", "ALL_CHANNELS", "SIM_HZ", "SENSOR_HZ", "COMMAND_HZ", "POLICY_HZ", "STATUS_HZ",
    "DEFAULT_URL", "Mode", "LcmUnavailableError", "open_lcm", "subscribe", "private_udpm_url",
    "ensure_multicast_route",
]

# --- channels (message type in hardware.msgs) -------------------------------------------------
JOINT_STATE = "SOM_JOINT_STATE"  # joint_state_t, robot → estimator, daemon
IMU = "SOM_IMU"  # imu_t, robot → estimator, daemon
FOOT_CONTACT = "SOM_FOOT_CONTACT"  # foot_contact_t, robot → estimator (where force sensing exists)
STATE_ESTIMATE = "SOM_STATE_ESTIMATE"  # state_estimate_t, estimator → daemon
JOINT_COMMAND = "SOM_JOINT_COMMAND"  # joint_command_t, daemon → robot
JOYSTICK = "SOM_JOYSTICK"  # joystick_t, operator → daemon
DAEMON_STATUS = "SOM_DAEMON_STATUS"  # daemon_status_t, daemon → operator / deploy report
SIM_TRUTH = "SOM_SIM_TRUTH"  # state_estimate_t with MuJoCo ground truth (sim only; reports and tests)
ALL_CHANNELS = (JOINT_STATE, IMU, FOOT_CONTACT, STATE_ESTIMATE, JOINT_COMMAND, JOYSTICK, DAEMON_STATUS, SIM_TRUTH)

# --- rates (Hz) ---------------------------------------------------------------------------------
SIM_HZ = 1000  # MuJoCo robot physics / motor-driver PD rate
SENSOR_HZ = 500  # joint state, IMU, contacts, state estimate
COMMAND_HZ = 500  # daemon joint commands (interpolated / held between policy steps)
POLICY_HZ = 50  # ONNX inference (the contract's control_dt)
STATUS_HZ = 10

# ttl=0 keeps the multicast on this host; the robot's onboard network uses the same URL.
DEFAULT_URL = "udpm://239.255.76.67:7667?ttl=0"


class Mode(enum.IntEnum):
    """Controller daemon state machine; e-stop from any state goes to DAMPING (latched)."""

    PASSIVE = 0  # zero gains, zero torque: the robot lies where it is
    STAND_UP = 1  # interpolating to the default pose
    POLICY = 2  # ONNX policy drives the joints
    DAMPING = 3  # kp = 0, kd > 0: the safe state every fault lands in


class LcmUnavailableError(RuntimeError):
    """The LCM provider cannot be opened; the message says how to fix it."""


def ensure_multicast_route() -> str:
    """Make udpm work on a host whose only interface is loopback: add 239.0.0.0/8 → lo if missing.

    Returns a line describing what was done. Needs root (or CAP_NET_ADMIN) to add the route.
    """
    routes = subprocess.run(["ip", "route", "show", "239.0.0.0/8"], capture_output=True, text=True).stdout
    if routes.strip():
        return f"multicast route present: {routes.strip()}"
    res = subprocess.run(["ip", "route", "add", "239.0.0.0/8", "dev", "lo"], capture_output=True, text=True)
    if res.returncode != 0:
        raise LcmUnavailableError("LCM udpm needs a multicast route and adding one failed "
                             f"({res.stderr.strip()}); run as root: ip route add 239.0.0.0/8 dev lo")
    return "added multicast route 239.0.0.0/8 dev lo"


def open_lcm(url: str | None = None):  # -> lcm.LCM (lcm is imported lazily so this module stays importable)
    """Open the LCM provider (`$SOM_LCM_URL`, else DEFAULT_URL); raise LcmUnavailableError with the fix."""
    import lcm

    url = url or os.environ.get("SOM_LCM_URL", DEFAULT_URL)
    try:
        return lcm.LCM(url)
    except RuntimeError as e:
        raise LcmUnavailableError(f"cannot open LCM provider {url!r}: {e}. On a loopback-only host run "
                             "`ip route add 239.0.0.0/8 dev lo` (som_robot.deploy --sim does this when root)") from e


def subscribe(lc, channel: str, handler):  # -> lcm.LCMSubscription
    """Subscribe `handler` to `channel`, or raise LcmUnavailableError.

    Why: lcm opens a udpm provider's receive socket at the first subscription and, when it cannot bind
    it (the port is held by a socket without SO_REUSEADDR, e.g. another process's ephemeral UDP socket),
    prints "bind: Address already in use" and returns None; the node would then run deaf.
    """
    sub = lc.subscribe(channel, handler)
    if sub is None:
        raise LcmUnavailableError(f"cannot subscribe to {channel}: LCM could not bind its receive socket "
                                  "(the URL's port is held by another socket); choose another port with --url")
    return sub


def _ephemeral_low(default: int = 32768) -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def private_udpm_url(group: str = "239.255.76.67", low: int = 20000) -> str:
    """A udpm URL on a port that no socket on this host holds, below the kernel's ephemeral range.

    Why: chains started side by side (tests, several sims on one host) need their own port; a random
    port inside the ephemeral range now and then meets some process's UDP socket and LCM cannot bind.
    The probe binds without SO_REUSEADDR, so a port another LCM node already listens on is skipped too.
    """
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        return f"udpm://{group}:{port}?ttl=0"
    raise LcmUnavailableError(f"no free UDP port in {low}..{high}")
