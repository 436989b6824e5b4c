"""The JSON log lines: a bot token never reaches one, however it got into the record."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import requests

from utils.logs import JsonFormatter, scrub

TOKEN = "4242000:AAF-fake-telegram-token-for-the-tests-0"
SECRET = TOKEN.split(":")[1]


def formatted(message: str, *args: object, exc_info=None) -> str:
    record = logging.LogRecord("telegive.test", logging.ERROR, __file__, 1, message, args, exc_info)
    return JsonFormatter().format(record)


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.telegram.org/bot{TOKEN}/getChatMember?chat_id=-100&user_id=5",
        f"Max retries exceeded with url: /bot{TOKEN}/getChatMember?chat_id=-100",
        f"/bot{TOKEN.replace(':', '%3A')}/getChatMember",
        f"token={TOKEN}-",  # a secret ending in "-" (no word boundary after it)
        f"plain {TOKEN}",
    ],
)
def test_a_bot_token_is_scrubbed_wherever_it_stands(text):
    assert SECRET not in scrub(text)
    assert SECRET.rstrip("-") not in scrub(text)


def test_a_requests_exception_with_a_telegram_url_logs_no_token():
    url = f"http://telegram.invalid/bot{TOKEN}/getChatMember?chat_id=-100&user_id=5"
    error = requests.ConnectionError(
        f"HTTPConnectionPool(host='telegram.invalid', port=80): Max retries exceeded with url: "
        f"/bot{TOKEN}/getChatMember?chat_id=-100&user_id=5"
    )
    try:
        raise error
    except requests.ConnectionError:
        line = formatted("outgoing call failed: %s (%s)", error, url, exc_info=sys.exc_info())
    entry = json.loads(line)
    assert "getChatMember" in entry["message"] and "getChatMember" in entry["traceback"]
    assert SECRET not in line


def test_ordinary_numbers_and_times_are_left_alone():
    text = "user 1000000001 entered at 12:30:45, giveaway 123456:7 (entry 42)"
    assert scrub(text) == text
