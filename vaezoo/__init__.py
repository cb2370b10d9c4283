"""vaezoo: a configurable zoo of Variational Autoencoders in PyTorch, on MNIST."""

__version__ = "0.1.0"
