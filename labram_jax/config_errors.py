"""The error every config check raises: its message names the field and the fix."""


class ConfigError(ValueError):
    """A config field that cannot work; raised before anything is compiled or allocated."""
