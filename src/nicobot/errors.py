"""Errors shown to users as one line (kept import-light for the CLI)."""


class ConfigError(Exception):
    """A configuration problem, said in one line that names the key."""


class PluginError(Exception):
    """A plugin could not be loaded or conflicts with another."""
