"""The request class: a body is read as JSON only when it is sent as JSON.

APIFlask reads every JSON body with ``get_json(force=True)``, whatever its Content-Type, so a
CORS-"simple" ``text/plain`` POST from a page on any site would be read like the callers' JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import UnsupportedMediaType


class JsonRequest(Request):
    """Flask's request, strict about the Content-Type of a JSON body."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body as JSON. A body sent as anything but ``application/json`` (a charset, or an
        ``application/*+json`` type, is fine) is 415, ``force`` notwithstanding; no body at all
        stays "not valid JSON" (400). A body nested deeper than the parser can follow is
        malformed too, not a RecursionError."""
        if not self.is_json and self.get_data(cache=True):
            if silent:
                return None
            raise UnsupportedMediaType()
        try:
            return super().get_json(force=True, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            return self.on_json_loading_failed(ValueError("JSON nested too deeply"))
