"""Typed SQLAlchemy models of the tables this service owns (all prefixed to stay clear of the
other services' tables in the shared database)."""

from models.audit import AuditEvent
from models.base import Base
from models.captcha import CaptchaChallenge
from models.draw import DrawRecord, EntrantCommitment
from models.membership import Membership
from models.participant import GiveawayState, Participant, ParticipantUser
from models.pending import PendingVerification

__all__ = [
    "AuditEvent",
    "Base",
    "CaptchaChallenge",
    "DrawRecord",
    "EntrantCommitment",
    "GiveawayState",
    "Membership",
    "Participant",
    "ParticipantUser",
    "PendingVerification",
]
