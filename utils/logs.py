"""JSON log lines with the request id and the caller; bot tokens are scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from utils.request_context import current_caller, current_request_id

# A Telegram bot token: "<bot id>:<35 url-safe characters>". Never printed, whatever logs it.
# No \b around it: in "/bot<id>:<secret>" the id follows a letter, and a secret may end in "-";
# the colon may come percent-encoded from a quoted URL.
_BOT_TOKEN = re.compile(r"(?<![0-9])[0-9]{5,}(?::|%3[Aa])[A-Za-z0-9_-]{30,}")
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def scrub(text: str) -> str:
    """The text with anything shaped like a bot token replaced."""
    return _BOT_TOKEN.sub("<redacted-bot-token>", text)


# Hand-written rather than python-json-logger: twenty lines, and every line must pass through
# ``scrub`` after the extras are rendered, which a formatter library would need overriding for.
class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, caller, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        caller = current_caller()
        if caller:
            entry["caller"] = caller
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON at ``level``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    # Replace our own handler (the factory may run more than once per process), keep others.
    root.handlers[:] = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG, and Telegram URLs carry the bot token.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
