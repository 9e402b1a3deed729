"""Reference servers the loss benchmark runs beside the service (never part of the service)."""
