"""User-facing errors: each one is printed as a single line and exits with status 2."""


class VaezooError(Exception):
    """A problem with the user's input (spec, data, output folder), not a bug in vaezoo."""


class SpecError(VaezooError):
    """The spec (or an override of it) is invalid; the message names the YAML path."""


class DataError(VaezooError):
    """A data file is missing, truncated or fails its checksum."""


class OutputError(VaezooError):
    """The output folder cannot be written, or a run there conflicts with the request."""
