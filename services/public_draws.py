"""The public draw page (``/draws/{giveaway_id}``): what it shows, and the one lookup it allows.

Anyone may read a giveaway's draw document, the same as ``GET /api/participants/{id}/draw``
(every record, which already publishes its winners, skipped entries and exclusions), and ask for
one inclusion proof at a time, for one user id, with nothing else in the answer than that
proof. Proof lookups are limited per client address (``PUBLIC_PROOF_LOOKUPS_PER_MINUTE``, of
which ``PUBLIC_PROOF_LOOKUP_BURST`` at once) and every lookup counts, whether or not the id
entered, so that finding out who entered a giveaway by trying ids costs the one trying time. An
IPv6 client is counted by its /64 network, which one subscriber usually holds whole.

The limit is a schedule per address (``utils/pacing.py``, GCRA, the same as the Telegram budget):
a lookup takes the address's next slot and is answered at once, and slots up to ``burst - 1``
intervals ahead are granted. It lives in Redis when the service has Redis (one Lua script on
Redis's clock, shared by every worker and instance), else in each process (and while Redis
fails).
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app

from config import Settings
from extensions import get_redis
from services import draws
from services.errors import DrawNotFound, TooManyLookups
from services.telegram_budget import LocalPacer, RedisPacer
from utils import draw as algorithm
from utils.pacing import MICROS, Slot, Verdict

KEY_PREFIX = "telegive:participant:proof_lookups:"
RELAYS = ("https://api.drand.sh", "https://drand.cloudflare.com")
log = logging.getLogger("telegive.public_draws")


class LookupLimit:
    """Proof lookups per client: ``per_minute``, of which ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int, local: LocalPacer | None = None) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.ahead = (burst - 1) / self.rate  # how far ahead a granted slot may lie (seconds)
        self.local = local or LocalPacer(max_bots=100_000)
        self._shared: RedisPacer | None = None

    def _redis(self) -> RedisPacer | None:
        client = get_redis()
        if client is None:
            return None
        if self._shared is None or self._shared.client is not client:
            self._shared = RedisPacer(client, prefix=KEY_PREFIX)
        return self._shared

    def _reserve(self, client: str) -> Slot:
        shared = self._redis()
        if shared is not None:
            try:
                return shared.reserve(client, rate=self.rate, max_wait=self.ahead)
            except redis.RedisError as error:
                log.warning("lookups in Redis unreadable", extra={"error": type(error).__name__})
        return self.local.reserve(client, rate=self.rate, max_wait=self.ahead)

    def retry_after(self, client: str) -> int | None:
        """None when ``client`` may look up now (the lookup is counted); otherwise the whole
        seconds until it may."""
        slot = self._reserve(client)
        if slot.verdict is Verdict.GRANTED:
            return None
        return max(1, math.ceil((slot.wait_us - round(self.ahead * MICROS)) / MICROS))


def init_app(app: Flask, settings: Settings) -> None:
    """The application's limit on proof lookups, created once before any request."""
    app.extensions["telegive.proof_lookups"] = LookupLimit(
        settings.public_proof_lookups_per_minute, settings.public_proof_lookup_burst
    )


def client_key(address: str | None) -> str:
    """Who a lookup is counted against: the address, or its /64 network for IPv6."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def public_document(giveaway_id: int) -> dict[str, Any]:
    """The draw document anyone may read (GET /api/participants/{id}/draw's)."""
    return draws.draw_document(giveaway_id)


def public_proof(*, giveaway_id: int, user_id: int, client: str | None) -> dict[str, Any]:
    """One user's inclusion proof for anyone, counted against ``client``'s lookups."""
    limit: LookupLimit = current_app.extensions["telegive.proof_lookups"]
    wait = limit.retry_after(client_key(client))
    if wait is not None:
        raise TooManyLookups(
            retry_after=wait, details={"limit": f"{limit.per_minute} lookups a minute"}
        )
    return draws.inclusion_proof(giveaway_id=giveaway_id, user_id=user_id)


@dataclass(frozen=True)
class DrawPage:
    """What the page states without JavaScript: the draw document, and the winners after every
    record (by position)."""

    giveaway_id: int
    document: dict[str, Any]
    records: list[dict[str, Any]]
    winners: list[tuple[int, int]]  # (position, user id)

    @property
    def first(self) -> dict[str, Any] | None:
        return self.records[0] if self.records else None

    @property
    def commitment(self) -> dict[str, Any] | None:
        """The entrant list's commitment: the first record's, or the document's before a draw."""
        if self.first is not None and self.first.get("entrant_root"):
            return {k: self.first.get(k) for k in ("entrant_root", "entrant_count")}
        return self.document.get("entrant_commitment")


def draw_page(giveaway_id: int) -> DrawPage | None:
    """The page's facts; None for a giveaway the service knows nothing about."""
    try:
        document = draws.draw_document(giveaway_id)
    except DrawNotFound:
        return None
    records = document.get("records") or []
    current = algorithm.winners_after(records)
    return DrawPage(
        giveaway_id=giveaway_id,
        document=document,
        records=records,
        winners=sorted((position, user_id) for user_id, position in current.items()),
    )


def round_links(chain_hash: str, round_number: int) -> list[tuple[str, str]]:
    """Where anyone can look a beacon round up: (relay's host, URL) for each public relay."""
    return [
        (relay.removeprefix("https://"), f"{relay}/{chain_hash}/public/{round_number}")
        for relay in RELAYS
    ]
