"""The foundation every layer stands on: errors, the registry, strict specs, atomic files, plugins."""
