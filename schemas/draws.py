"""Shapes of the draw resource: select-winners, reroll, commitment, the published record."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from schemas.common import InputModel, OpaqueText, OutputModel, Prose, Timestamp
from services.errors import ValidationFailed


class SelectWinnersIn(InputModel):
    winner_count: int = Field(ge=1, le=100_000, strict=False)


class RerollIn(InputModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "oneOf": [{"required": ["replace_user_id"]}, {"required": ["add_count"]}],
            "description": "Exactly one of replace_user_id and add_count.",
        },
    )

    replace_user_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="The winner to replace (loses the win)."
    )
    add_count: int | None = Field(default=None, ge=1, le=1000, description="Winners to add.")
    reason: Prose = Field(min_length=1, max_length=500, description="Why; recorded in the draw.")
    idempotency_key: OpaqueText | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Repeating a reroll with the same key returns it instead of rerolling again "
        "(the Idempotency-Key header works too).",
    )

    @model_validator(mode="after")
    def exactly_one_change(self) -> RerollIn:
        if (self.replace_user_id is None) == (self.add_count is None):
            raise ValueError("give exactly one of replace_user_id and add_count")
        return self


_HEADER_KEY = TypeAdapter(OpaqueText)


def header_idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header held to the body field's rules (None when absent or blank)."""
    key = (value or "").strip()[:128]
    if not key:
        return None
    try:
        return _HEADER_KEY.validate_python(key)
    except ValidationError as error:
        problem = str(error.errors()[0]["ctx"]["error"])
        raise ValidationFailed(
            "Invalid input: check Idempotency-Key.", details={"Idempotency-Key": problem}
        ) from None


class WinnerOut(OutputModel):
    user_id: int
    participant_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    position: int
    winner_selected_at: Timestamp | None = None


class SelectWinnersOut(OutputModel):
    success: bool = True
    giveaway_id: int
    already_drawn: bool
    winners: list[WinnerOut]
    total_participants: int
    winner_count: int
    unclaimed_count: int
    skipped: list[dict[str, Any]]
    draw: dict[str, Any] = Field(description="The published draw record (see utils/draw.py).")
    verification_url: str | None = Field(
        default=None,
        description="The page where anyone checks this draw in a browser (PUBLIC_BASE_URL).",
    )


class RerollOut(OutputModel):
    success: bool = True
    giveaway_id: int
    already_done: bool
    replaced_user_id: int | None = None
    new_winners: list[WinnerOut]
    winners: list[WinnerOut] = Field(description="The giveaway's winners after this reroll.")
    unclaimed_count: int
    draw: dict[str, Any]


class WinnersOut(OutputModel):
    success: bool = True
    giveaway_id: int
    drawn: bool
    winners: list[WinnerOut]
    total_winners: int


class WinnerStatusOut(OutputModel):
    success: bool = True
    user_id: int
    giveaway_id: int
    participated: bool
    is_winner: bool
    winner_selected_at: Timestamp | None = None
    position: int | None = None
    total_winners: int


class EntrantCommitmentOut(OutputModel):
    entrant_root: str
    entrant_count: int
    entrants_hash: str
    entrants_committed_at: str
    beacon_round: int | None = None


class BeaconFactsOut(OutputModel):
    chain_hash: str
    public_key: str
    genesis_time: int
    period: int
    relays: list[str]


class InclusionProofOut(OutputModel):
    success: bool = True
    giveaway_id: int
    user_id: int
    algorithm: str
    algorithm_version: int
    entrant_root: str = Field(description="The committed root this proof leads to.")
    entrant_count: int
    entrants_committed_at: str
    leaf_index: int = Field(description="The user's place in the committed (ascending) list.")
    salt: str = Field(description="The user's own salt (hex); no other entry's salt is shown.")
    leaf: str = Field(description="SHA-256(0x00 || salt || user id in decimal), hex.")
    proof: list[str] = Field(description="The other children of each group on the way up.")


class DrawDocumentOut(OutputModel):
    success: bool = True
    giveaway_id: int
    drawn: bool
    algorithm: str
    algorithm_version: int
    entries_closed: bool
    entrant_count: int
    commitment: str = Field(description="SHA-256 of the seed the next draw (or reroll) will use.")
    committed_at: str
    entrant_commitment: EntrantCommitmentOut | None = Field(
        default=None,
        description="The entrant list's Merkle root and count, fixed when entries closed, and the "
        "beacon round that fixed; null until entries close.",
    )
    beacon: BeaconFactsOut | None = Field(
        default=None, description="The drand chain draws take public randomness from (null: off)."
    )
    verification_url: str | None = Field(
        default=None,
        description="The page where anyone checks this draw in a browser (PUBLIC_BASE_URL).",
    )
    next_reroll_round: dict[str, Any] | None = Field(
        default=None, description="The beacon round fixed for a reroll requested but not done."
    )
    draw: dict[str, Any] | None = Field(default=None, description="The latest record.")
    records: list[dict[str, Any]] | None = Field(default=None, description="The whole chain.")
