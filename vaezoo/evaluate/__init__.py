"""What a trained model is measured by: bounds, latent statistics, the probe, and their typed records."""
