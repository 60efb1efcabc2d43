"""The API's routers (each thin: validate, check ownership, call a service)."""
