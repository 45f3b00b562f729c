"""The answer store: SQLite through SQLAlchemy (``data/listening.db``, WAL mode) or whatever
``FGG_DB_URL`` names (e.g. ``postgresql+psycopg://...``), safe under concurrent requests. One
database holds every study; ``ListeningStore.study(id)`` is one study's view of it.

A rater is a random token the server issues for one study (never a name the rater types, so
nobody continues someone else's session by guessing). A rater's screens are assigned one at a
time, least-assigned item first (ties broken in an order drawn from the rater's token), so every
prompt × system gets balanced coverage however many raters come; the attention items sit at
positions drawn from the token; each screen's clip order is a permutation drawn from a seed
stored with the assignment and the answer. An assignment is kept: a reload shows the same screen.

Answers are keyed by (rater, item) and the first one stands (a repeated or concurrent submit
returns it, never an error); the page names the item an answer is for by a server-signed token
(``item_token``), handed out with the clips and sent back with the answer, so a replayed submit
can only ever repeat the answer to the item that was heard, never land on the next one; scores
are checked here (``score_value``), whatever the client sends; the audio a rater hears is named by
an opaque per-rater clip id (``clip_id``), never by system or prompt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from demo.listening.analysis import CHOICE_COLUMNS, RATING_COLUMNS, analyse
from demo.listening.export import FORMULA_STARTS
from demo.listening.legacy import LEGACY_STUDY, import_legacy
from demo.listening.schema import (
    LABELS,
    SAME,
    Answer,
    Answered,
    Assignment,
    Base,
    Item,
    Rater,
    Trial,
    preference_value,
    score_value,
    utc,
)
from demo.listening.study import REPO_ROOT, BuiltStudy, shipped_studies

DEFAULT_DB = REPO_ROOT / "data" / "listening.db"
PERSISTENT_DB = Path("/data") / "listening.db"  # a Space's persistent storage, where mounted
UNKNOWN_RATER = "unknown rater token: press Start to begin a new session"
UNKNOWN_ITEM = "this answer is not for a screen you were given (stale or invalid item token): press Start to continue"
ITEM_TOKEN_CHARS = 32  # hex digits of the HMAC: 128 bits
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


def _rater_token() -> str:
    """A random URL-safe token that never starts like a spreadsheet formula, so the export
    shows it exactly as the rater holds it (a leading '-' would get ``safe_cell``'s apostrophe)."""
    while (token := secrets.token_urlsafe(RATER_TOKEN_BYTES))[:1] in FORMULA_STARTS:
        pass
    return token


class ListeningStore:
    """The database of every study in ``studies`` (default: the shipped ones, built)."""

    def __init__(self, url: str | None = None, studies: Iterable[BuiltStudy] | None = None):
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
        self._secret = secrets.token_bytes(32)  # clip ids and item tokens: valid for this process
        built = shipped_studies() if studies is None else list(studies)
        self.studies = {b.id: StudyStore(self, b) for b in built}
        if LEGACY_STUDY in self.studies:  # answers from before studies were files, carried once
            import_legacy(self.engine, LEGACY_STUDY, self.studies[LEGACY_STUDY].study.config_hash)

    def study(self, study_id: str) -> StudyStore:
        return self.studies[study_id]

    def sign(self, *parts: object) -> str:
        """An HMAC of ``parts`` under the store's secret (domain-separated by the first part)."""
        message = "\0".join(map(str, parts)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


class StudyStore:
    """One study's raters, assignments and answers (the methods the pages and results call)."""

    def __init__(self, store: ListeningStore, built: BuiltStudy):
        self.store, self.built, self.study = store, built, built.study
        self.engine = store.engine
        self.sync_items()

    @property
    def id(self) -> str:
        return self.study.id

    # -- items

    def sync_items(self) -> int:
        """Insert the build's items that the database does not know yet (by key)."""
        with Session(self.engine) as session:
            known = set(session.scalars(select(Item.key).where(Item.study == self.id)))
            new = [
                Item(
                    study=self.id,
                    key=item["key"],
                    prompt=item["prompt"],
                    kind=item["kind"],
                    systems=[c["system"] for c in item["clips"]],
                    midis=[c["midi"] for c in item["clips"]],
                )
                for item in self.built.items
                if item["key"] not in known
            ]
            session.add_all(new)
            try:
                session.commit()
            except IntegrityError:  # another process synced the same items first
                session.rollback()
        return len(new)

    def items(self) -> list[Item]:
        keys = {item["key"] for item in self.built.items}  # the build's: an item dropped from it is not served
        with Session(self.engine) as session:
            rows = session.scalars(select(Item).where(Item.study == self.id).order_by(Item.id))
            return [item for item in rows if item.key in keys]

    def midi_path(self, name: str) -> str:
        return str(self.built.folder / "midi" / name)

    @property
    def total(self) -> int:
        """Screens per rater: the study's ``items_per_rater``, at most every item."""
        return min(self.study.items_per_rater, len(self.built.items))

    # -- raters

    def new_rater(self) -> str:
        """A fresh rater of this study: a random token (the only way to continue is to hold it)."""
        rater = _rater_token()
        with Session(self.engine) as session:
            session.add(Rater(id=rater, study=self.id, created_at=datetime.now(UTC)))
            session.commit()
        return rater

    def resume_rater(self, token: str) -> str:
        """The rater of this study holding ``token`` (issued by ``new_rater``); anything else,
        another study's rater included, is refused."""
        token = (token or "").strip() if isinstance(token, str) else ""
        if not token or len(token) > 36:
            raise ValueError(UNKNOWN_RATER)
        with Session(self.engine) as session:
            rater = session.get(Rater, token)
            if rater is None or rater.study != self.id:
                raise ValueError(UNKNOWN_RATER)
        return token

    # -- assignments

    def trials(self, rater_id: str) -> list[Trial]:
        """The screens assigned to ``rater_id`` so far, in order."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(Assignment, Item)
                .join(Item, Assignment.item_id == Item.id)
                .where(Assignment.rater_id == rater_id)
                .order_by(Assignment.position)
            ).all()
            return [self._trial(a, item) for a, item in rows]

    def _trial(self, assignment: Assignment, item: Item) -> Trial:
        order = assignment.order
        return Trial(
            item.id,
            assignment.position,
            self.total,
            tuple(item.systems[i] for i in order),
            tuple(self.midi_path(item.midis[i]) for i in order),
        )

    def answered(self, rater_id: str) -> set[int]:
        with Session(self.engine) as session:
            return set(session.scalars(select(Answer.item_id).where(Answer.rater_id == rater_id)))

    def next_trial(self, rater_id: str) -> Trial | None:
        """The rater's first assigned screen not answered yet, else a new one (None: all done)."""
        done = self.answered(rater_id)
        assigned = self.trials(rater_id)
        pending = next((t for t in assigned if t.item_id not in done), None)
        if pending is not None or len(assigned) >= self.total:
            return pending
        return self._assign(rater_id, len(assigned) + 1)

    def _attention_positions(self, rater_id: str, n_attention: int) -> set[int]:
        rng = random.Random(f"fgg-listening:{self.id}:{rater_id}:attention")
        return set(rng.sample(range(1, self.total + 1), min(n_attention, self.total)))

    def _assign(self, rater_id: str, position: int) -> Trial | None:
        """Assign the rater's ``position``-th screen: an attention item where the rater's
        positions for them fall, else the trial item assigned least so far (in this study),
        ties in the rater's own random order; kept, so every later call returns it."""
        items = self.items()
        attention = [i for i in items if i.kind == "attention"]
        trials = [i for i in items if i.kind != "attention"]
        with Session(self.engine) as session:
            mine = set(session.scalars(select(Assignment.item_id).where(Assignment.rater_id == rater_id)))
            counts = dict(
                session.execute(
                    select(Assignment.item_id, func.count())
                    .where(Assignment.item_id.in_([i.id for i in trials]))
                    .group_by(Assignment.item_id)
                ).all()
            )
        rng = random.Random(f"fgg-listening:{self.id}:{rater_id}:order")
        tiebreak = {i.id: rng.random() for i in items}
        if position in self._attention_positions(rater_id, len(attention)):
            pool = [i for i in attention if i.id not in mine]
        else:
            pool = [i for i in trials if i.id not in mine]
        if not pool:
            pool = [i for i in items if i.id not in mine]
        if not pool:
            return None
        item = min(pool, key=lambda i: (counts.get(i.id, 0), tiebreak[i.id]))
        seed = int(self.store.sign("order", self.id, rater_id, item.key)[:7], 16)  # 28 bits: an SQL integer
        order = list(range(len(item.systems)))
        random.Random(seed).shuffle(order)
        with Session(self.engine) as session:
            session.add(Assignment(rater_id=rater_id, item_id=item.id, position=position, order_seed=seed, order=order))
            try:
                session.commit()
            except IntegrityError:  # the same rater's other request assigned this position first
                session.rollback()
        return next((t for t in self.trials(rater_id) if t.number == position), None)

    # -- names a rater holds

    def clip_id(self, rater_id: str, item_id: int, label: str) -> str:
        """Opaque name of what ``rater_id`` hears as ``label`` of ``item_id``: an HMAC under a
        per-process secret, so it says nothing of the system, the prompt or other raters."""
        return self.store.sign("clip", self.id, rater_id, item_id, label)[:24]

    def item_token(self, rater_id: str, item_id: int) -> str:
        """The signed name of ``item_id`` as given to ``rater_id``: opaque, for this rater only."""
        return self.store.sign("item-token", self.id, rater_id, item_id)[:ITEM_TOKEN_CHARS]

    def heard_trial(self, rater_id: str, token: object) -> Trial:
        """The assigned trial of ``rater_id`` that ``token`` (``item_token``) names; a token of
        another rater's item, a forged or garbled one is refused (``UNKNOWN_ITEM``)."""
        token = token if isinstance(token, str) else ""
        if len(token) == ITEM_TOKEN_CHARS and all(ch in "0123456789abcdef" for ch in token):
            for trial in self.trials(rater_id):
                if hmac.compare_digest(token, self.item_token(rater_id, trial.item_id)):
                    return trial
        raise ValueError(UNKNOWN_ITEM)

    # -- answers

    @property
    def preferences(self) -> tuple[str, ...] | None:
        """What a preference may be (the clips' labels, then "same"), None without the question."""
        if self.study.preference is None:
            return None
        return (*LABELS[: self.built.clips_per_item], SAME)

    def answer(self, rater_id: str, token: object, scores: dict, preference: object) -> Answered:
        """Store the answer to the screen ``token`` names (``heard_trial``) once, and say what comes
        next. ``scores``: criterion -> one score per clip in the order heard. A repeat — a double
        click, a network retry, a replayed request, whatever it carries — writes nothing and returns
        the stored answer and the same next screen."""
        rater_id = self.resume_rater(rater_id)  # a rater of this study, else UNKNOWN_RATER
        trial = self.heard_trial(rater_id, token)
        stored, first = self._stored(rater_id, trial.item_id), False
        if stored is None:  # new (else a repeat: what it carries is not even looked at)
            stored, first = self._store(rater_id, trial, scores, preference)
        return Answered(stored, trial.item_id, self.next_trial(rater_id), first)

    def _checked(self, trial: Trial, scores: dict, preference: object) -> tuple[dict, str | None]:
        """``scores`` and ``preference`` as stored, or ValueError naming the first bad one."""
        if not isinstance(scores, dict):
            raise ValueError("scores must be an object: criterion -> one score per clip")
        clean = {}
        for c in self.study.criteria:
            given = scores.get(c.name)
            if not isinstance(given, (list, tuple)) or len(given) != len(trial.labels):
                raise ValueError(f"rate every clip ({', '.join(trial.labels)}) on {c.name}")
            named = zip(given, trial.labels, strict=True)
            clean[c.name] = [score_value(v, f"{label} · {c.name}", c.points) for v, label in named]
        options = self.preferences
        chosen = None if options is None else preference_value(preference, options)
        return clean, chosen

    def _stored(self, rater_id: str, item_id: int) -> dict | None:
        with Session(self.engine) as session:
            answer = session.scalar(select(Answer).where(Answer.rater_id == rater_id, Answer.item_id == item_id))
            return None if answer is None else {"scores": answer.scores, "preference": answer.preference}

    def _store(self, rater_id: str, trial: Trial, scores: dict, preference: object) -> tuple[dict, bool]:
        """Write the answer of ``rater_id`` to ``trial`` unless one is stored; return the stored
        one and whether this call wrote it."""
        clean, chosen = self._checked(trial, scores, preference)
        with Session(self.engine) as session:
            if session.get(Rater, rater_id) is None:
                raise ValueError(UNKNOWN_RATER)
            assignment = session.scalar(
                select(Assignment).where(Assignment.rater_id == rater_id, Assignment.item_id == trial.item_id)
            )
            assert assignment is not None  # heard_trial found the trial among the rater's assignments
            answer = Answer(
                rater_id=rater_id,
                item_id=trial.item_id,
                shown=list(trial.systems),
                scores=clean,
                preference=chosen,
                order_seed=assignment.order_seed,
                config_hash=self.study.config_hash,
                submitted_at=datetime.now(UTC),
            )
            session.add(answer)
            try:
                session.commit()
                wrote = True
            except IntegrityError:  # the same answer raced in from another request
                session.rollback()
                wrote = False
        return self._stored(rater_id, trial.item_id) or {}, wrote

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The study's answers in long form (``demo.listening.analysis``): ratings (one row per
        score: rater, item, prompt, system, criterion, score, kind, heard_as, order_seed,
        config_hash, submitted_at) and choices (rater, item, prompt, shown, chosen, kind, …)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(Answer, Item).join(Item, Answer.item_id == Item.id).where(Item.study == self.id)
            ).all()
            ratings, choices = [], []
            for answer, item in rows:
                labels = LABELS[: len(answer.shown)]
                common = {"rater": answer.rater_id, "item": item.key, "prompt": item.prompt, "kind": item.kind}
                extra = {
                    "order_seed": answer.order_seed,
                    "config_hash": answer.config_hash,
                    "submitted_at": utc(answer.submitted_at).isoformat(),
                }
                for criterion, scores in answer.scores.items():
                    for label, system, score in zip(labels, answer.shown, scores, strict=True):
                        row = {"system": system, "criterion": criterion, "score": score, "heard_as": label}
                        ratings.append(common | row | extra)
                if answer.preference is not None:
                    chosen = None if answer.preference == SAME else answer.shown[labels.index(answer.preference)]
                    choices.append(common | {"shown": tuple(answer.shown), "chosen": chosen} | extra)
        extras = ["heard_as", "order_seed", "config_hash", "submitted_at"]
        return (
            pd.DataFrame(ratings, columns=[*RATING_COLUMNS, *extras]),
            pd.DataFrame(choices, columns=[*CHOICE_COLUMNS, *extras[1:]]),
        )

    def results(self, n_boot: int = 2000, frames: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict:
        """The analysis of the study's answers (``analysis.analyse``), headed by its id, hash and
        title, with the moment each screen was answered (``answered_at``, ISO-8601 UTC)."""
        ratings, choices = self.frames() if frames is None else frames
        criteria = [c.name for c in self.study.criteria]
        result = analyse(ratings, choices, reference=self.study.reference, criteria=criteria, n_boot=n_boot)
        screens = pd.concat([ratings, choices])[["rater", "item", "submitted_at"]].drop_duplicates(["rater", "item"])
        head = {"study": self.id, "config_hash": self.study.config_hash, "title": self.study.title}
        return head | result | {"answered_at": sorted(screens["submitted_at"])}

    def progress(self) -> dict:
        """Raters, answers and coverage: how often the least and the most answered item was."""
        with Session(self.engine) as session:
            raters = session.scalar(select(func.count()).select_from(Rater).where(Rater.study == self.id)) or 0
            per_item = dict(
                session.execute(
                    select(Item.id, func.count(Answer.id))
                    .join(Answer, Answer.item_id == Item.id, isouter=True)
                    .where(Item.study == self.id)
                    .group_by(Item.id)
                ).all()
            )
        counts = [per_item.get(item.id, 0) for item in self.items()]
        return {
            "study": self.id,
            "title": self.study.title,
            "open": self.study.open,
            "raters": raters,
            "target_raters": self.study.target_raters,
            "answers": sum(counts),
            "items": len(counts),
            "least_answered": min(counts, default=0),
            "most_answered": max(counts, default=0),
        }
