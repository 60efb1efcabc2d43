"""Python SDK (placeholder, filled below)."""
