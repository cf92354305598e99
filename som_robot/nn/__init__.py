"""Network building blocks shared by the algorithms."""

from som_robot.nn.blocks import MLP, TimeEmbedding, activation, sinusoidal_embedding

__all__ = ["MLP", "TimeEmbedding", "activation", "sinusoidal_embedding"]
