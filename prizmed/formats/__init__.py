"""Date and time formats of the dashboard (settings.FORMAT_MODULE_PATH)."""
