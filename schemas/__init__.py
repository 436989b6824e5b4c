"""Pydantic request and response shapes; they validate, serialise and feed the OpenAPI document."""
