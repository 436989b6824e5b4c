"""Health shapes."""

from __future__ import annotations

from pydantic import BaseModel


class HealthOut(BaseModel):
    success: bool = True
    status: str
    service: str = "telegive-participant"
    version: str


class CheckOut(BaseModel):
    ok: bool
    detail: str
    duration_ms: float


class ReadyOut(BaseModel):
    success: bool
    status: str
    checks: dict[str, CheckOut]
    error: str | None = None
    error_code: str | None = None
