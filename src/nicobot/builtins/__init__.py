"""The core's own plugins, registered from ``DEFAULT_PLUGINS`` through the public hooks."""
