#!/usr/bin/env python3
"""DEVELOPMENT TOOL — a stand-in for the Giveaway, Channel and Auth services and the Telegram Bot
API, so the whole flow works on a laptop. Never deployed; the service never imports it.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length) on asyncio, standard library only
(but for the BLS package that signs the drand rounds), to serve thousands of answers a second with
an optional delay (``--telegram-delay-ms``) that imitates Telegram's latency for the benchmarks.

The world it pretends:
- every giveaway id is ``active``, on account ``42``, except: 404 does not exist, 410 is
  ``finished``; ``POST /_standin/giveaways/{id}`` with ``{"status": ...}`` changes one;
  ``POST /_standin/giveaways/{id}/failure`` with ``{"status": 503}`` makes the Giveaway service
  answer that 5xx for this one id until ``{"status": null}`` (``make chaos``'s failing peer);
- account ``42``'s channel is ``-1000000000042`` (``@telegive_demo``); account 404 is unknown,
  account 405 has no channel configured;
- the bot token of account N is ``N000:DEV-STANDIN-...`` (fake), given only to callers sending the
  ``X-Service-Token`` the stand-in was started with;
- Telegram says user ids ending in 0 have ``left`` the channel, ending in 9 were ``kicked``, and
  every other user is a ``member``; ``POST /_standin/members/{user_id}`` with ``{"status": ...}``
  overrides one user;
- it is also a drand relay for the development chain (devtools/drand_chain.py, quicknet's scheme
  under a public development key): ``/{chain_hash}/public/{round}`` answers a round published by
  now (404 for a later one), ``/{chain_hash}/public/latest`` the latest, ``/{chain_hash}/info``
  the chain's facts;
- Telegram's flood control, with ``--telegram-limit N``: at most N getChatMember calls of one bot
  in any second, a 429 with ``retry_after: 1`` beyond; ``GET /_standin/telegram`` counts the calls,
  the 429s and the calls answered in each second.

Run: ``python devtools/standin.py --port 8090 [--telegram-delay-ms 100] [--telegram-limit 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections import Counter, deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools import drand_chain

GIVEAWAY = re.compile(r"^/api/giveaways/(\d+)$")
CHANNEL = re.compile(r"^/api/accounts/(\d+)/channel$")
TOKEN = re.compile(r"^/api/v1/bots/token/(\d+)$")
CHAT_MEMBER = re.compile(r"^/bot(\d+):([A-Za-z0-9_-]+)/getChatMember$")
SET_GIVEAWAY = re.compile(r"^/_standin/giveaways/(\d+)$")
FAIL_GIVEAWAY = re.compile(r"^/_standin/giveaways/(\d+)/failure$")
SET_MEMBER = re.compile(r"^/_standin/members/(\d+)$")
DRAND_ROUND = re.compile(rf"^/{drand_chain.DEV_CHAIN.hash}/public/(\d+|latest)$")
DRAND_INFO = f"/{drand_chain.DEV_CHAIN.hash}/info"
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class World:
    """The stand-in's state: giveaway statuses and membership overrides."""

    def __init__(
        self, service_secret: str, telegram_delay: float, telegram_limit: int | None = None
    ) -> None:
        self.service_secret = service_secret
        self.telegram_delay = telegram_delay
        # Telegram's flood control, imitated: at most this many getChatMember calls of one bot
        # in any second, a 429 with retry_after beyond (None: no limit).
        self.telegram_limit = telegram_limit
        self.recent_calls: dict[int, deque[float]] = {}
        self.chat_member_refused = 0
        self.calls_by_second: Counter[int] = Counter()  # unix second -> getChatMember answered
        self.refused_by_second: Counter[int] = Counter()  # unix second -> 429s
        self.giveaway_status: dict[int, str] = {410: "finished"}
        self.giveaway_failures: dict[int, int] = {}  # giveaway id -> the 5xx it answers
        self.members: dict[int, str] = {}
        self.chat_member_calls = 0  # reported by /health, so benchmarks can count Telegram calls

    async def answer(
        self, method: str, target: str, headers: dict, body: bytes
    ) -> tuple[int, dict]:
        url = urlsplit(target)
        path = url.path
        if method == "GET" and path == "/health":
            return 200, {
                "success": True,
                "status": "healthy",
                "service": "standin",
                "get_chat_member_calls": self.chat_member_calls,
            }
        if match := GIVEAWAY.match(path):
            return self.giveaway(int(match[1]))
        if match := CHANNEL.match(path):
            return self.channel(int(match[1]))
        if match := TOKEN.match(path):
            return self.token(int(match[1]), headers.get("x-service-token", ""))
        if match := CHAT_MEMBER.match(path):
            self.chat_member_calls += 1
            if self.over_limit(int(match[1])):
                self.chat_member_refused += 1
                self.refused_by_second[int(time.time())] += 1
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                }
            self.calls_by_second[int(time.time())] += 1
            if self.telegram_delay:
                await asyncio.sleep(self.telegram_delay)
            return self.chat_member(int(match[1]), parse_qs(url.query))
        if method == "GET" and path == "/_standin/telegram":
            return 200, {
                "calls": self.chat_member_calls,
                "refused_429": self.chat_member_refused,
                "answered_by_second": {str(k): v for k, v in sorted(self.calls_by_second.items())},
                "refused_by_second": {str(k): v for k, v in sorted(self.refused_by_second.items())},
            }
        if method == "GET" and (match := DRAND_ROUND.match(path)):
            return self.drand_round(match[1])
        if method == "GET" and path == DRAND_INFO:
            return 200, drand_chain.info()
        if method == "POST" and (match := SET_GIVEAWAY.match(path)):
            self.giveaway_status[int(match[1])] = json.loads(body or b"{}").get("status", "active")
            return 200, {"success": True}
        if method == "POST" and (match := FAIL_GIVEAWAY.match(path)):
            status = json.loads(body or b"{}").get("status")
            if status is None:
                self.giveaway_failures.pop(int(match[1]), None)
            elif isinstance(status, int) and 500 <= status <= 599:
                self.giveaway_failures[int(match[1])] = status
            else:
                return 400, {"success": False, "error": "status must be a 5xx or null"}
            return 200, {"success": True}
        if method == "POST" and (match := SET_MEMBER.match(path)):
            self.members[int(match[1])] = json.loads(body or b"{}").get("status", "member")
            return 200, {"success": True}
        return 404, {"success": False, "error": "not found", "error_code": "NOT_FOUND"}

    def over_limit(self, bot_id: int) -> bool:
        """Whether this call would exceed the bot's calls in the last second (and if not, count
        it)."""
        if self.telegram_limit is None:
            return False
        now = time.monotonic()
        calls = self.recent_calls.setdefault(bot_id, deque())
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= self.telegram_limit:
            return True
        calls.append(now)
        return False

    def giveaway(self, giveaway_id: int) -> tuple[int, dict]:
        if failure := self.giveaway_failures.get(giveaway_id):
            return failure, {"success": False, "error": "induced failure", "code": "INTERNAL"}
        if giveaway_id == 404:
            return 404, {
                "success": False,
                "error": "Giveaway not found",
                "error_code": "GIVEAWAY_NOT_FOUND",
            }
        status = self.giveaway_status.get(giveaway_id, "active")
        return 200, {
            "success": True,
            "giveaway": {
                "id": giveaway_id,
                "account_id": 42,
                "title": f"Demo giveaway #{giveaway_id}",
                "status": status,
                "winner_count": 3,
                "message_id": 1000 + giveaway_id,
            },
        }

    def channel(self, account_id: int) -> tuple[int, dict]:
        if account_id == 404:
            return 404, {
                "success": False,
                "error": "Account not found",
                "code": "ACCOUNT_NOT_FOUND",
            }
        if account_id == 405:
            return 404, {"success": False, "error": "No channel", "code": "CHANNEL_NOT_CONFIGURED"}
        return 200, {
            "success": True,
            "channel": {
                "channel_id": -1000000000000 - account_id,
                "channel_username": "@telegive_demo",
                "channel_title": "Telegive Demo Channel",
                "is_verified": True,
            },
        }

    def token(self, account_id: int, presented: str) -> tuple[int, dict]:
        if presented != self.service_secret:
            return 401, {"error": "invalid service token"}
        if account_id == 404:
            return 404, {"error": "account not found"}
        return 200, {
            "bot_token": f"{account_id}000:DEV-STANDIN-not-a-real-token-0000",
            "bot_id": account_id * 1000,
        }

    def drand_round(self, asked: str) -> tuple[int, dict]:
        latest = drand_chain.DEV_CHAIN.round_at(time.time())
        round_number = latest if asked == "latest" else int(asked)
        if not 1 <= round_number <= latest:
            return 404, {"error": f"round {round_number} is not published (latest: {latest})"}
        return 200, drand_chain.beacon(round_number)

    def chat_member(self, bot_id: int, query: dict) -> tuple[int, dict]:
        try:
            user_id = int(query["user_id"][0])
            int(query["chat_id"][0])
        except (KeyError, ValueError):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: invalid parameters",
            }
        status = self.members.get(user_id)
        if status is None:
            status = {0: "left", 9: "kicked"}.get(user_id % 10, "member")
        return 200, {
            "ok": True,
            "result": {"status": status, "user": {"id": user_id, "is_bot": False}},
        }


async def handle(world: World, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            status, payload = await world.answer(method, target, headers, body)
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: keep-alive\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return  # the client went away, or sent something that is not HTTP
    finally:
        writer.close()


async def serve(host: str, port: int, world: World) -> None:
    server = await asyncio.start_server(lambda r, w: handle(world, r, w), host, port, backlog=1024)
    print(
        f"standin: DEVELOPMENT stand-in for Giveaway/Channel/Auth/Telegram on http://{host}:{port}",
        flush=True,
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--service-secret", default="dev-service-secret-not-for-production")
    parser.add_argument("--telegram-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--telegram-limit",
        type=int,
        default=None,
        help="getChatMember calls one bot may make in any second; a 429 beyond (default: none)",
    )
    arguments = parser.parse_args()
    world = World(
        arguments.service_secret, arguments.telegram_delay_ms / 1000, arguments.telegram_limit
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(arguments.host, arguments.port, world))


if __name__ == "__main__":
    main()
