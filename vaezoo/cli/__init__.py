"""The `vaezoo` command line."""
