"""Health shapes."""

from __future__ import annotations

from schemas.common import OutputModel


class HealthOut(OutputModel):
    success: bool = True
    status: str
    service: str = "telegive-participant"
    version: str


class CheckOut(OutputModel):
    ok: bool
    detail: str
    duration_ms: float


class ReadyOut(OutputModel):
    success: bool
    status: str
    checks: dict[str, CheckOut]
    error: str | None = None
    error_code: str | None = None
