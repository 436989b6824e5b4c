"""The service version, shown by /health and the OpenAPI document."""

__version__ = "1.0.0"
