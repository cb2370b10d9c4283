"""An experiment as data: the spec's schema, its YAML, its component slots, and the objects it builds."""
