"""A run folder from spec to report: running, resuming and re-reading one experiment."""
