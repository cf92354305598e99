"""som_robot: SOM training in MuJoCo, ONNX export, and an LCM controller daemon for quadrupeds.

Importing the package pulls in nothing heavy: the onboard daemon needs only numpy,
onnxruntime, lcm and pyyaml; the training side (torch, mujoco) is the `[train]` extra.
"""

__version__ = "0.1.0"
