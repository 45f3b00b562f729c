"""What the listening studies store: their tables (SQLAlchemy), a trial as a rater hears it,
and what an answer may hold (a score on the criterion's scale, a preference among the clips).

Every row belongs to a study (``demo.listening.study``): an item is one screen of it (two clips,
or all of a prompt's clips on a multi-stimulus page), a rater is a token of one study (a
participant of one study never sees another), an assignment is the n-th screen of a rater
(which item, in which order of its clips: a permutation drawn from a seed, both stored), an
answer is a rater's scores and preference on an assigned item, the first one stands.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SAME = "same"  # a preference for none of the clips
LABELS = tuple(string.ascii_uppercase)  # what the page calls the clips, in the order heard


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "study_items"
    __table_args__ = (UniqueConstraint("study", "key", name="one_item_per_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # "trial" or "attention"
    systems: Mapped[list] = mapped_column(JSON)  # the clips' systems, in the built order
    midis: Mapped[list] = mapped_column(JSON)  # their MIDI files, relative to the study's folder


class Rater(Base):
    __tablename__ = "study_raters"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    study: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    __tablename__ = "study_assignments"
    __table_args__ = (
        UniqueConstraint("rater_id", "position", name="one_item_per_position"),
        UniqueConstraint("rater_id", "item_id", name="one_position_per_item"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("study_raters.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based
    order_seed: Mapped[int] = mapped_column(Integer)
    order: Mapped[list] = mapped_column(JSON)  # heard position -> index into the item's clips


class Answer(Base):
    __tablename__ = "study_answers"
    __table_args__ = (UniqueConstraint("rater_id", "item_id", name="one_answer_per_rater_and_item"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("study_raters.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id"))
    shown: Mapped[list] = mapped_column(JSON)  # the systems in the order heard (A, B, …)
    scores: Mapped[dict] = mapped_column(JSON)  # criterion -> [score of A, of B, …]
    preference: Mapped[str | None] = mapped_column(String(8), nullable=True)  # a label, SAME, or None
    order_seed: Mapped[int] = mapped_column(Integer)
    config_hash: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Trial:
    """One item as a given rater hears it: its clips in this rater's order."""

    item_id: int
    number: int  # 1-based position in this rater's sequence
    total: int
    systems: tuple[str, ...]  # in the order heard
    midis: tuple[str, ...]  # paths, in the order heard

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS[: len(self.systems)]


@dataclass(frozen=True)
class Answered:
    """What storing an answer says: the stored answer (the first one to the item:
    ``{"scores": {criterion: [A, B, …]}, "preference": ...}``), the item it is for, the rater's
    next trial (None when all are answered), and whether this request wrote it (False: a repeat)."""

    answer: dict
    item_id: int
    next: Trial | None
    first: bool


def utc(moment: datetime | str) -> datetime:
    """A stored moment as UTC: SQLite hands back naive datetimes (and ISO text through a raw
    query); every stored time is UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def score_value(value: object, name: str, points: tuple[int, ...]) -> int:
    """A score as sent by any client -> an int among ``points``; anything else (3.5, True,
    NaN, "4", None) is refused with a message naming the rating."""
    refusal = f"rating '{name}' must be a whole number {points[0]}-{points[-1]}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(refusal)
    if not math.isfinite(value) or value != int(value) or int(value) not in points:
        raise ValueError(refusal)
    return int(value)


def preference_value(value: object, options: tuple[str, ...]) -> str:
    """A preference as sent by any client -> one of ``options``, else ValueError."""
    if value not in options:
        raise ValueError(f"preference must be one of {', '.join(options)}, got {value!r}")
    return str(value)
