"""What the listening test stores: its tables (SQLAlchemy), a trial as a rater hears it, and
the vocabulary of an answer (criteria, scores, preferences)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CRITERIA = ("creativity", "harmony", "naturalness")
SCORES = (1, 2, 3, 4, 5)  # a rating is one of these, whatever the client sends
PREFERENCES = ("A", "B", "same")
FGG_SYSTEM = "fgg"  # every pair is FGG (system_x) against another system (system_y)
# The attention check: an FGG clip against itself with the accompaniment a semitone sharp
# (every note clashes with the melody). A rater who prefers the degraded clip, or rates its
# harmony above the original's, is flagged and left out of the results.
ATTENTION_SYSTEM = "degraded"


class Base(DeclarativeBase):
    pass


class Pair(Base):
    __tablename__ = "pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    segment: Mapped[int] = mapped_column(Integer)
    system_x: Mapped[str] = mapped_column(String(32))  # always FGG_SYSTEM
    system_y: Mapped[str] = mapped_column(String(32))  # the baseline
    midi_x: Mapped[str] = mapped_column(String(256))
    midi_y: Mapped[str] = mapped_column(String(256))


class Rater(Base):
    __tablename__ = "raters"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("rater_id", "pair_id", name="one_answer_per_rater_and_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    system_a: Mapped[str] = mapped_column(String(32))  # what the rater heard as "A"
    system_b: Mapped[str] = mapped_column(String(32))
    a_creativity: Mapped[int] = mapped_column(Integer)
    a_harmony: Mapped[int] = mapped_column(Integer)
    a_naturalness: Mapped[int] = mapped_column(Integer)
    b_creativity: Mapped[int] = mapped_column(Integer)
    b_harmony: Mapped[int] = mapped_column(Integer)
    b_naturalness: Mapped[int] = mapped_column(Integer)
    preference: Mapped[str] = mapped_column(String(8))  # one of PREFERENCES
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Trial:
    """One pair as a given rater hears it (blind A/B order fixed per rater and pair)."""

    pair_id: int
    number: int  # 1-based position in this rater's sequence
    total: int
    system_a: str
    system_b: str
    midi_a: str
    midi_b: str


@dataclass(frozen=True)
class Answered:
    """What storing an answer (``ListeningStore.answer``) says: the stored answer (the first one
    to the pair: ``{"a": {...}, "b": {...}, "preference": ...}``), the pair it is for, the rater's
    next trial (None when all are answered), and whether this request wrote it (False: a repeat)."""

    answer: dict
    pair_id: int
    next: Trial | None
    first: bool


def rating_value(value: object, name: str) -> int:
    """A rating as sent by any client -> an int in SCORES; anything else (3.5, True, NaN, "4",
    None) is refused with a message naming the rating."""
    refusal = f"rating '{name}' must be a whole number {SCORES[0]}-{SCORES[-1]}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(refusal)
    if not math.isfinite(value) or value != int(value) or int(value) not in SCORES:
        raise ValueError(refusal)
    return int(value)


def preference_value(value: object) -> str:
    """A preference as sent by any client -> one of PREFERENCES, else ValueError."""
    if value not in PREFERENCES:
        raise ValueError(f"preference must be one of {', '.join(PREFERENCES)}, got {value!r}")
    return str(value)
