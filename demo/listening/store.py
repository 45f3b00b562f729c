"""The answer store: SQLite through SQLAlchemy (``data/listening.db``, WAL mode) or whatever
``FGG_DB_URL`` names (e.g. ``postgresql+psycopg://...``), safe under concurrent requests.

A rater is a random token the server issues (never a name the rater types, so nobody continues
someone else's session by guessing); answers are keyed by (rater, pair) and the first one
stands (a repeated or concurrent submit returns it, never an error); the page names the pair
an answer is for by a server-signed pair token (``pair_token``), handed out with the pair's
clips and sent back with the answer, so a replayed submit can only ever repeat the answer to
the pair that was heard (``answer``), never land on the pair after it; ratings are checked here
(``rating_value``), whatever the client sends; the audio a rater hears is named by an opaque
per-rater clip id (``clip_id``), never by system or segment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from demo.listening.export import FORMULA_STARTS, answers_csv, answers_json
from demo.listening.pool import POOL_DIR, REPO_ROOT
from demo.listening.schema import (
    ATTENTION_SYSTEM,
    CRITERIA,
    Answered,
    Base,
    Pair,
    Rater,
    Rating,
    Trial,
    preference_value,
    rating_value,
)
from demo.listening.stats import summarize

DEFAULT_DB = REPO_ROOT / "data" / "listening.db"
PERSISTENT_DB = Path("/data") / "listening.db"  # a Space's persistent storage, where mounted
UNKNOWN_RATER = "unknown rater token: press Start to begin a new session"
UNKNOWN_PAIR = "this answer is not for a pair you were given (stale or invalid pair token): press Start to continue"
PAIR_TOKEN_CHARS = 32  # hex digits of the HMAC: 128 bits
RATER_TOKEN_BYTES = 18  # 24 URL-safe characters, 144 random bits
log = logging.getLogger("fgg.listening")


def database_url() -> str:
    """``FGG_DB_URL`` (a plain ``postgresql://`` or ``postgres://`` URL uses psycopg 3, the
    driver in requirements.txt), else SQLite: ``/data/listening.db`` where a persistent
    ``/data`` volume is mounted (a Space with persistent storage), else ``data/listening.db``
    in the app folder."""
    url = os.environ.get("FGG_DB_URL")
    if url:
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+psycopg://" + url[len(scheme) :]
        return url
    path = PERSISTENT_DB if PERSISTENT_DB.parent.is_dir() and os.access(PERSISTENT_DB.parent, os.W_OK) else DEFAULT_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def storage_warning(url: str) -> str | None:
    """What an operator must know when answers would not survive a restart: on a Hugging
    Face Space (``SPACE_ID`` set) an SQLite file outside ``/data`` lives on ephemeral disk."""
    if (
        os.environ.get("SPACE_ID")
        and url.startswith("sqlite")
        and not url.startswith(f"sqlite:///{PERSISTENT_DB.parent}/")
    ):
        return (
            "answers are stored in an SQLite file on this Space's ephemeral disk and are lost at every restart: "
            "enable persistent storage (/data) or set FGG_DB_URL to a PostgreSQL database"
        )
    return None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL, so readers never block the writer, and a 30 s wait for the write lock."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def answer_record(rating: Rating, pair: Pair) -> dict:
    """One answer as the results and the export see it: sides resolved to systems (FGG vs
    the pair's baseline), the preference named by system (or "same")."""
    fgg_side, baseline_side = ("a", "b") if rating.system_a == pair.system_x else ("b", "a")
    preferred = {"same": "same", "A": rating.system_a, "B": rating.system_b}[rating.preference]
    return {
        "rater": rating.rater_id,
        "pair": pair.key,
        "segment": pair.segment,
        "baseline": pair.system_y,
        "attention_check": pair.system_y == ATTENTION_SYSTEM,
        "system_a": rating.system_a,
        "system_b": rating.system_b,
        **{f"fgg_{c}": getattr(rating, f"{fgg_side}_{c}") for c in CRITERIA},
        **{f"baseline_{c}": getattr(rating, f"{baseline_side}_{c}") for c in CRITERIA},
        "preferred": preferred,
        "submitted_at": _utc(rating.submitted_at).isoformat(),
    }


def submitted(rating: Rating) -> dict:
    """A stored answer as ``submit`` returns it: ``{"a": {...}, "b": {...}, "preference": ...}``."""
    return {
        "a": {c: getattr(rating, f"a_{c}") for c in CRITERIA},
        "b": {c: getattr(rating, f"b_{c}") for c in CRITERIA},
        "preference": rating.preference,
    }


def _rater_token() -> str:
    """A random URL-safe token that never starts like a spreadsheet formula, so the export
    shows it exactly as the rater holds it (a leading '-' would get ``safe_cell``'s apostrophe)."""
    while (token := secrets.token_urlsafe(RATER_TOKEN_BYTES))[:1] in FORMULA_STARTS:
        pass
    return token


class ListeningStore:
    def __init__(self, url: str | None = None, pool_dir: str | os.PathLike = POOL_DIR):
        self.url = url or database_url()
        sqlite = self.url.startswith("sqlite")
        self.engine = create_engine(
            self.url, connect_args={"timeout": 30, "check_same_thread": False} if sqlite else {}
        )
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self.warning = storage_warning(self.url)
        if self.warning:
            log.warning(self.warning)
        self._clip_secret = secrets.token_bytes(32)
        self.pool_dir = Path(pool_dir)
        self.sync_pool()

    # -- pool

    def sync_pool(self) -> int:
        """Insert the pool's pairs (``manifest.json``) that the database does not know yet."""
        manifest = self.pool_dir / "manifest.json"
        if not manifest.is_file():
            return 0
        pairs = json.loads(manifest.read_text(encoding="utf-8"))["pairs"]
        columns = ("key", "segment", "system_x", "system_y", "midi_x", "midi_y")
        with Session(self.engine) as session:
            known = set(session.scalars(select(Pair.key)))
            new = [Pair(**{c: p[c] for c in columns}) for p in pairs if p["key"] not in known]
            session.add_all(new)
            try:
                session.commit()
            except IntegrityError:  # another process synced the same pairs first
                session.rollback()
        return len(new)

    def pairs(self) -> list[Pair]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Pair).order_by(Pair.id)))

    # -- raters

    def new_rater(self) -> str:
        """A fresh rater: a random token (the only way to continue is to hold it)."""
        rater = _rater_token()
        with Session(self.engine) as session:
            session.add(Rater(id=rater, created_at=datetime.now(UTC)))
            session.commit()
        return rater

    def resume_rater(self, token: str) -> str:
        """The rater holding ``token`` (issued by ``new_rater``); anything else is refused."""
        token = (token or "").strip()
        if not token or len(token) > 36:
            raise ValueError(UNKNOWN_RATER)
        with Session(self.engine) as session:
            if session.get(Rater, token) is None:
                raise ValueError(UNKNOWN_RATER)
        return token

    def plan(self, rater_id: str) -> list[Trial]:
        """This rater's blind sequence: pair order and A/B sides shuffled by a generator
        seeded with the rater id (stable across reloads, different between raters)."""
        pairs = self.pairs()
        rng = random.Random(f"fgg-listening:{rater_id}")
        rng.shuffle(pairs)
        trials = []
        for n, p in enumerate(pairs, start=1):
            swap = rng.random() < 0.5
            (system_a, midi_a), (system_b, midi_b) = (
                ((p.system_y, p.midi_y), (p.system_x, p.midi_x))
                if swap
                else ((p.system_x, p.midi_x), (p.system_y, p.midi_y))
            )
            trials.append(
                Trial(p.id, n, len(pairs), system_a, system_b, str(self.pool_dir / midi_a), str(self.pool_dir / midi_b))
            )
        return trials

    def clip_id(self, rater_id: str, pair_id: int, side: str) -> str:
        """Opaque name of what ``rater_id`` hears as ``side`` of ``pair_id``: an HMAC under a
        per-process secret, so it says nothing of the system, the segment or other raters."""
        message = f"{rater_id}:{pair_id}:{side}".encode()
        return hmac.new(self._clip_secret, message, hashlib.sha256).hexdigest()[:24]

    def pair_token(self, rater_id: str, pair_id: int) -> str:
        """The signed name of ``pair_id`` as given to ``rater_id``: an HMAC under the store's
        secret (domain-separated from ``clip_id``), opaque, and valid for this rater only."""
        message = f"pair-token\0{rater_id}\0{pair_id}".encode()
        return hmac.new(self._clip_secret, message, hashlib.sha256).hexdigest()[:PAIR_TOKEN_CHARS]

    def heard_trial(self, rater_id: str, token: object) -> Trial:
        """The trial of ``rater_id`` that ``token`` (``pair_token``) names; a token of another
        rater's pair, a forged or garbled one is refused (``UNKNOWN_PAIR``)."""
        token = token if isinstance(token, str) else ""
        if len(token) == PAIR_TOKEN_CHARS and all(ch in "0123456789abcdef" for ch in token):
            for trial in self.plan(rater_id):
                if hmac.compare_digest(token, self.pair_token(rater_id, trial.pair_id)):
                    return trial
        raise ValueError(UNKNOWN_PAIR)

    def answered(self, rater_id: str) -> set[int]:
        with Session(self.engine) as session:
            return set(session.scalars(select(Rating.pair_id).where(Rating.rater_id == rater_id)))

    def next_trial(self, rater_id: str) -> Trial | None:
        done = self.answered(rater_id)
        return next((t for t in self.plan(rater_id) if t.pair_id not in done), None)

    # -- answers

    def answer(self, rater_id: str, token: object, ratings_a: dict, ratings_b: dict, preference: str) -> Answered:
        """Store the answer to the pair ``token`` names (``heard_trial``) once, and say what comes
        next. A repeat — a double click, a network retry, a replayed request, whatever ratings it
        carries — writes nothing and returns the stored answer and the same next pair: the rater's
        progress moves only with answers to pairs they were given, never with a replay."""
        if not isinstance(rater_id, str) or not rater_id:
            raise ValueError(UNKNOWN_RATER)
        trial = self.heard_trial(rater_id, token)
        stored, first = self._stored(rater_id, trial.pair_id), False
        if stored is None:  # new (else a repeat: its ratings are not even looked at)
            stored, first = self._store(rater_id, trial, ratings_a, ratings_b, preference)
        return Answered(stored, trial.pair_id, self.next_trial(rater_id), first)

    def submit(self, rater_id: str, pair_id: int, ratings_a: dict, ratings_b: dict, preference: str) -> dict:
        """Store one answer and return it (as ``{"a": {...}, "b": {...}, "preference": ...}``).
        Scores are integers 1-5 per criterion (``rating_value``); the A/B sides are the ones
        ``plan`` showed this rater. The first answer to a pair stands: submitting it again —
        a double click, a retry, two tabs at once — returns the stored answer, never an error.
        The page goes through ``answer`` (the pair named by its signed token) instead."""
        trial = next((t for t in self.plan(rater_id) if t.pair_id == pair_id), None)
        if trial is None:
            raise ValueError(f"unknown pair {pair_id}")
        return self._store(rater_id, trial, ratings_a, ratings_b, preference)[0]

    def _stored(self, rater_id: str, pair_id: int) -> dict | None:
        with Session(self.engine) as session:
            rating = session.scalar(select(Rating).where(Rating.rater_id == rater_id, Rating.pair_id == pair_id))
            return None if rating is None else submitted(rating)

    def _store(
        self, rater_id: str, trial: Trial, ratings_a: dict, ratings_b: dict, preference: str
    ) -> tuple[dict, bool]:
        """Write the answer of ``rater_id`` to ``trial`` unless one is stored; return the stored
        one and whether this call wrote it."""
        a = {c: rating_value(ratings_a.get(c), f"A · {c}") for c in CRITERIA}
        b = {c: rating_value(ratings_b.get(c), f"B · {c}") for c in CRITERIA}
        preference = preference_value(preference)
        answer = Rating(
            rater_id=rater_id,
            pair_id=trial.pair_id,
            system_a=trial.system_a,
            system_b=trial.system_b,
            preference=preference,
            submitted_at=datetime.now(UTC),
            **{f"a_{c}": a[c] for c in CRITERIA},
            **{f"b_{c}": b[c] for c in CRITERIA},
        )
        with Session(self.engine) as session:
            if session.get(Rater, rater_id) is None:
                raise ValueError(UNKNOWN_RATER)
            first = select(Rating).where(Rating.rater_id == rater_id, Rating.pair_id == trial.pair_id)
            stored, wrote = session.scalar(first), False
            if stored is None:
                session.add(answer)
                try:
                    session.commit()
                    wrote = True
                except IntegrityError:  # the same answer raced in from another request
                    session.rollback()
                stored = session.scalars(first).one()
            return submitted(stored), wrote

    def answers(self) -> list[dict]:
        """One dict per answer (``answer_record``), sides resolved to systems (fgg vs baseline)."""
        with Session(self.engine) as session:
            rows = session.execute(select(Rating, Pair).join(Pair, Rating.pair_id == Pair.id)).all()
            return [answer_record(rating, pair) for rating, pair in rows]

    # -- results and export

    def results(self, answers: list[dict] | None = None) -> dict:
        """``stats.summarize`` of ``answers`` (``self.answers()``, unless the caller has them)."""
        return summarize(self.answers() if answers is None else answers)

    def export_csv(self) -> str:
        """All answers as CSV, every text cell formula-safe (``export.safe_cell``)."""
        return answers_csv(self.answers())

    def export_json(self) -> str:
        return answers_json(self.answers())
