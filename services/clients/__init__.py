"""Clients for the sibling services and Telegram: explicit timeouts, one error for "unavailable"."""
