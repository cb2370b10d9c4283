"""The VAE itself: its distributions, where the posterior meets the prior, and the assembled model."""
