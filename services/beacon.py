"""The public randomness a draw mixes in: a drand round, fetched from relays that are never trusted.

``fetch_round`` waits until the round's publication time, then asks the relays of DRAND_URLS in
order, each with DRAND_TIMEOUT_SECONDS; the first answer whose signature verifies against the
configured chain's public key (utils/drand.py) wins. A relay answering a bad signature, another
round or garbage is skipped, logged and counted; one that does not have the round yet (404 or
425) or cannot be reached is asked again after a short pause, until the caller's deadline. With
no valid answer by then: ``BeaconUnavailable`` (503, retryable), and nothing else has happened.

Calls go through services/clients/http.py as the peer ``drand`` with the relay as the resource,
so a failing relay gets a circuit of its own and a dead network opens the peer's. Outcomes are
counted in ``telegive_participant_beacon_fetches_total``. Wall time (the chain's schedule),
monotonic time (the deadline) and sleeping go through the module's ``clock``, which tests replace.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from config import current_settings
from services.clients.http import PeerResponse, get_json
from services.errors import BeaconUnavailable, UpstreamUnavailable
from utils.drand import BeaconInvalid, Chain, randomness_of, verify_round
from utils.metrics import BEACON_FETCH_DURATION, BEACON_FETCHES

PEER = "drand"
# Pauses between passes over the relays while none has given the round, the last one repeated.
RETRY_PAUSES = (0.25, 0.5, 1.0)
DEFAULT_RETRY_AFTER = 5
log = logging.getLogger("telegive.beacon")


class Clock:
    """Time as the beacon sees it: wall time for the chain's schedule, monotonic time for
    deadlines, and sleep."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


clock = Clock()


@dataclass(frozen=True)
class Beacon:
    """A verified drand round: the chain, the round, its signature and randomness (hex)."""

    chain_hash: str
    round: int
    signature: str
    randomness: str

    def as_record(self) -> dict[str, Any]:
        """The beacon as a draw record carries it."""
        return {
            "chain_hash": self.chain_hash,
            "round": self.round,
            "signature": self.signature,
            "randomness": self.randomness,
        }


def chain() -> Chain:
    """The drand chain of the settings (DRAND_*; quicknet by default)."""
    return current_settings().drand_chain


def enabled() -> bool:
    """Whether draws mix in a drand round (DRAW_BEACON=drand)."""
    return current_settings().draw_beacon == "drand"


class _RelayAnswer(BaseModel):
    """A relay's ``/{chain_hash}/public/{round}`` answer (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    round: StrictInt
    signature: StrictStr
    randomness: StrictStr | None = None


@dataclass(frozen=True)
class _Outcome:
    """What one relay said: ``kind`` is valid, not_yet, invalid or unavailable."""

    kind: str
    reason: str
    beacon: Beacon | None = None
    retry_after: int | None = None


def fetch_round(round: int, *, deadline: float) -> Beacon:
    """The verified ``round`` of the configured chain, waiting for its publication if needed.

    ``deadline`` is a ``clock.monotonic()`` value (``time.monotonic()`` outside tests). Raises
    BeaconUnavailable when no relay gave a valid answer by then, or when the round is published
    only after it; VerifierMissing when signatures cannot be checked here (a deployment error).
    """
    settings = current_settings()
    drand = settings.drand_chain
    wait = drand.time_of(round) - clock.time()
    if wait > 0:
        if clock.monotonic() + wait > deadline:
            BEACON_FETCHES.labels("gave_up").inc()
            raise BeaconUnavailable(
                round, "not_published_before_deadline", retry_after=math.ceil(wait)
            )
        clock.sleep(wait)
    started = clock.monotonic()
    last: dict[str, _Outcome] = {}
    passes = 0
    while True:
        for relay in settings.drand_urls:
            now = clock.monotonic()
            if last and now >= deadline:
                break
            read_timeout = min(settings.drand_timeout, max(deadline - now, 0.1))
            outcome = _ask(relay, drand, round, read_timeout, settings.upstream_connect_timeout)
            BEACON_FETCHES.labels(outcome.kind).inc()
            if outcome.beacon is not None:
                BEACON_FETCH_DURATION.observe(clock.monotonic() - started)
                return outcome.beacon
            if outcome.kind == "invalid":
                log.warning(
                    "drand relay answer refused",
                    extra={"relay": relay, "round": round, "reason": outcome.reason},
                )
            last[relay] = outcome
        pause = RETRY_PAUSES[min(passes, len(RETRY_PAUSES) - 1)]
        if clock.monotonic() + pause >= deadline:
            break
        clock.sleep(pause)
        passes += 1
    BEACON_FETCHES.labels("gave_up").inc()
    reasons = {relay: f"{outcome.kind}: {outcome.reason}" for relay, outcome in last.items()}
    log.warning("drand round unavailable", extra={"round": round, "relays": reasons})
    raise BeaconUnavailable(round, _summary(last), retry_after=_retry_after(last))


def _ask(
    relay: str, drand: Chain, round: int, read_timeout: float, connect_timeout: float
) -> _Outcome:
    """One relay's answer for ``round``, verified."""
    try:
        answer = get_json(
            peer=PEER,
            resource=relay,
            url=f"{relay}/{drand.hash}/public/{round}",
            timeout=(min(connect_timeout, read_timeout), read_timeout),
        )
    except UpstreamUnavailable as error:
        return _Outcome("unavailable", error.reason, retry_after=error.retry_after)
    if answer.status in (404, 425):
        return _Outcome("not_yet", f"http_{answer.status}")
    if answer.status != 200:
        return _Outcome("unavailable", f"http_{answer.status}")
    return _verified(answer, drand, round)


def _verified(answer: PeerResponse, drand: Chain, round: int) -> _Outcome:
    """A 200 answer as a Beacon if it is the chain's signature of ``round``."""
    try:
        body = _RelayAnswer.model_validate(answer.body)
    except ValidationError:
        return _Outcome("invalid", "malformed_body")
    if body.round != round:
        return _Outcome("invalid", f"answered round {body.round} for round {round}")
    try:
        verify_round(drand, round, body.signature)
    except BeaconInvalid as error:
        return _Outcome("invalid", str(error))
    signature = bytes.fromhex(body.signature).hex()  # verified: hex of 48 bytes, now lower case
    randomness = randomness_of(signature)
    if body.randomness is not None and body.randomness.lower() != randomness:
        return _Outcome("invalid", "its randomness is not SHA-256 of its signature")
    return _Outcome("valid", "verified", Beacon(drand.hash, round, signature, randomness))


def _summary(last: dict[str, _Outcome]) -> str:
    """Why no relay gave the round, in one word for the error's details."""
    kinds = {outcome.kind for outcome in last.values()}
    if "invalid" in kinds:
        return "invalid_answers"
    if "not_yet" in kinds:
        return "not_published_yet"
    return "relays_unavailable"


def _retry_after(last: dict[str, _Outcome]) -> int:
    """Seconds before asking again: until the first relay's circuit closes when every relay's is
    open, else a few seconds."""
    waits = [outcome.retry_after for outcome in last.values()]
    if waits and all(wait is not None for wait in waits):
        return max(1, min(wait for wait in waits if wait is not None))
    return DEFAULT_RETRY_AFTER
