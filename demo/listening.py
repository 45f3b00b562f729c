"""Listening test: a pool of pre-generated pairs and a concurrent-safe answer store.

    python -m demo.listening build --pairs 12 [--out assets/listening] [--checkpoint ...]
    python -m demo.listening results [--html plots.html]  # per-system means, CIs, preference test
    FGG_ADMIN_PASSWORD=... python -m demo.listening export --password ... [--format csv|json] > answers.csv

The pool is MIDI pairs (FGG vs a baseline on the same validation segment, same seed) plus a
``manifest.json``; audio is rendered from the MIDI on first use, so raters never wait for
sampling. Answers live in SQLite through SQLAlchemy (``data/listening.db``, WAL mode) or
whatever ``FGG_DB_URL`` names (e.g. ``postgresql+psycopg://...``).

Blind and tamper-resistant by construction: a rater is a random token the server issues
(never a name the rater types, so nobody continues someone else's session by guessing);
answers are keyed by (rater, pair) and the first one stands (a repeated or concurrent submit
returns it, never an error); ratings are integers 1–5 checked here, whatever the client
sends; the audio a rater hears is named by an opaque per-rater clip id (``clip_id``), never
by system or segment. Results and export need ``FGG_ADMIN_PASSWORD`` (``AdminGate``: wrong
guesses back off exponentially per client); the export is formula-safe CSV or JSON with
ISO-8601 UTC timestamps, built in memory.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import io
import json
import math
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from fgg.checkpoint import DEFAULT_MODEL, shipped

REPO_ROOT = Path(__file__).resolve().parent.parent
POOL_DIR = REPO_ROOT / "assets" / "listening"
DEFAULT_DB = REPO_ROOT / "data" / "listening.db"
PERSISTENT_DB = Path("/data") / "listening.db"  # a Space's persistent storage, where mounted
CRITERIA = ("creativity", "harmony", "naturalness")
PREFERENCES = ("A", "B", "same")
DEFAULT_BASELINES = ("no_fgg", "last_step_remove", "inpaint")
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
    system_x: Mapped[str] = mapped_column(String(32))  # always "fgg"
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
    preference: Mapped[str] = mapped_column(String(8))  # "A", "B" or "same"
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


class ListeningStore:
    def __init__(self, url: str | None = None, pool_dir: str | os.PathLike = POOL_DIR):
        self.url = url or database_url()
        sqlite = self.url.startswith("sqlite")
        self.engine = create_engine(
            self.url, connect_args={"timeout": 30, "check_same_thread": False} if sqlite else {}
        )
        if sqlite:

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record):  # WAL: readers never block the writer
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

        Base.metadata.create_all(self.engine)
        self.warning = storage_warning(self.url)
        if self.warning:
            import logging

            logging.getLogger("fgg.listening").warning(self.warning)
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
        added = 0
        with Session(self.engine) as session:
            known = set(session.scalars(select(Pair.key)))
            for p in pairs:
                if p["key"] not in known:
                    session.add(
                        Pair(
                            key=p["key"],
                            segment=p["segment"],
                            system_x=p["system_x"],
                            system_y=p["system_y"],
                            midi_x=p["midi_x"],
                            midi_y=p["midi_y"],
                        )
                    )
                    added += 1
            try:
                session.commit()
            except IntegrityError:  # another process synced the same pairs first
                session.rollback()
        return added

    def pairs(self) -> list[Pair]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Pair).order_by(Pair.id)))

    # -- raters

    def new_rater(self) -> str:
        """A fresh rater: a random token (the only way to continue is to hold it)."""
        rater = secrets.token_urlsafe(18)  # 24 characters, 144 random bits
        with Session(self.engine) as session:
            session.add(Rater(id=rater, created_at=datetime.now(UTC)))
            session.commit()
        return rater

    def resume_rater(self, token: str) -> str:
        """The rater holding ``token`` (issued by ``new_rater``); anything else is refused."""
        token = (token or "").strip()
        if not token or len(token) > 36:
            raise ValueError("unknown rater token: press Start to begin a new session")
        with Session(self.engine) as session:
            if session.get(Rater, token) is None:
                raise ValueError("unknown rater token: press Start to begin a new session")
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
            a, b = (
                ((p.system_y, p.midi_y), (p.system_x, p.midi_x))
                if swap
                else ((p.system_x, p.midi_x), (p.system_y, p.midi_y))
            )
            trials.append(Trial(p.id, n, len(pairs), a[0], b[0], str(self.pool_dir / a[1]), str(self.pool_dir / b[1])))
        return trials

    def clip_id(self, rater_id: str, pair_id: int, side: str) -> str:
        """Opaque name of what ``rater_id`` hears as ``side`` of ``pair_id``: an HMAC under a
        per-process secret, so it says nothing of the system, the segment or other raters."""
        message = f"{rater_id}:{pair_id}:{side}".encode()
        return hmac.new(self._clip_secret, message, hashlib.sha256).hexdigest()[:24]

    def answered(self, rater_id: str) -> set[int]:
        with Session(self.engine) as session:
            return set(session.scalars(select(Rating.pair_id).where(Rating.rater_id == rater_id)))

    def next_trial(self, rater_id: str) -> Trial | None:
        done = self.answered(rater_id)
        return next((t for t in self.plan(rater_id) if t.pair_id not in done), None)

    def submit(self, rater_id: str, pair_id: int, ratings_a: dict, ratings_b: dict, preference: str) -> dict:
        """Store one answer and return it (as ``{"a": {...}, "b": {...}, "preference": ...}``).
        Scores are integers 1-5 per criterion (``rating_value``); the A/B sides are the ones
        ``plan`` showed this rater. The first answer to a pair stands: submitting it again —
        a double click, a retry, two tabs at once — returns the stored answer, never an error."""
        a = {c: rating_value(ratings_a.get(c), f"A · {c}") for c in CRITERIA}
        b = {c: rating_value(ratings_b.get(c), f"B · {c}") for c in CRITERIA}
        if preference not in PREFERENCES:
            raise ValueError(f"preference must be one of {', '.join(PREFERENCES)}, got {preference!r}")
        trial = next((t for t in self.plan(rater_id) if t.pair_id == pair_id), None)
        if trial is None:
            raise ValueError(f"unknown pair {pair_id}")
        values = dict(
            system_a=trial.system_a,
            system_b=trial.system_b,
            preference=preference,
            submitted_at=datetime.now(UTC),
            **{f"a_{c}": a[c] for c in CRITERIA},
            **{f"b_{c}": b[c] for c in CRITERIA},
        )
        with Session(self.engine) as session:
            if session.get(Rater, rater_id) is None:
                raise ValueError("unknown rater token: press Start to begin a new session")
            stored = session.scalar(select(Rating).where(Rating.rater_id == rater_id, Rating.pair_id == pair_id))
            if stored is None:
                session.add(Rating(rater_id=rater_id, pair_id=pair_id, **values))
                try:
                    session.commit()
                except IntegrityError:  # the same answer raced in from another request
                    session.rollback()
                stored = session.scalar(select(Rating).where(Rating.rater_id == rater_id, Rating.pair_id == pair_id))
            return {
                "a": {c: getattr(stored, f"a_{c}") for c in CRITERIA},
                "b": {c: getattr(stored, f"b_{c}") for c in CRITERIA},
                "preference": stored.preference,
            }

    # -- results

    def answers(self) -> list[dict]:
        """One dict per answer, sides resolved to systems (fgg vs baseline)."""
        with Session(self.engine) as session:
            rows = session.execute(select(Rating, Pair).join(Pair, Rating.pair_id == Pair.id)).all()
        out = []
        for r, p in rows:
            fgg_is_a = r.system_a == p.system_x
            pref = {"same": "same", "A": r.system_a, "B": r.system_b}[r.preference]
            out.append(
                {
                    "rater": r.rater_id,
                    "pair": p.key,
                    "segment": p.segment,
                    "baseline": p.system_y,
                    "attention_check": p.system_y == ATTENTION_SYSTEM,
                    "system_a": r.system_a,
                    "system_b": r.system_b,
                    **{f"fgg_{c}": getattr(r, f"{'a' if fgg_is_a else 'b'}_{c}") for c in CRITERIA},
                    **{f"baseline_{c}": getattr(r, f"{'b' if fgg_is_a else 'a'}_{c}") for c in CRITERIA},
                    "preferred": pref,
                    "submitted_at": _utc(r.submitted_at).isoformat(),
                }
            )
        return out

    def results(self, answers: list[dict] | None = None) -> dict:
        """Per system: mean and 95 % CI of each criterion; per baseline: how often FGG was
        preferred, with a two-sided exact binomial (sign) test over non-tied answers and a
        Wilcoxon signed-rank test on the paired ratings. Attention-check answers and every
        answer of a rater who failed one (``flagged_raters``) are left out; ``raters`` counts
        them. ``answers``: ``self.answers()``, if the caller already has them."""
        from scipy import stats

        every = self.answers() if answers is None else answers
        flagged = flagged_raters(every)
        answers = [a for a in every if not a["attention_check"] and a["rater"] not in flagged]
        table = []
        for system in sorted({a["baseline"] for a in answers} | ({"fgg"} if answers else set())):
            prefix = "fgg" if system == "fgg" else "baseline"
            rows = answers if system == "fgg" else [a for a in answers if a["baseline"] == system]
            entry = {"system": system, "answers": len(rows)}
            for c in CRITERIA:
                v = np.array([a[f"{prefix}_{c}"] for a in rows], dtype=float)
                entry[c] = float(v.mean()) if len(v) else float("nan")
                entry[f"{c}_ci95"] = float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
            table.append(entry)
        tests = []
        for baseline in sorted({a["baseline"] for a in answers}):
            rows = [a for a in answers if a["baseline"] == baseline]
            wins = sum(a["preferred"] == "fgg" for a in rows)
            losses = sum(a["preferred"] == baseline for a in rows)
            test = {
                "baseline": baseline,
                "answers": len(rows),
                "fgg_preferred": wins,
                "baseline_preferred": losses,
                "same": len(rows) - wins - losses,
                "sign_test_p": float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else float("nan"),
            }
            for c in CRITERIA:
                diff = np.array([a[f"fgg_{c}"] - a[f"baseline_{c}"] for a in rows], dtype=float)
                test[f"{c}_wilcoxon_p"] = (
                    float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else float("nan")
                )
            tests.append(test)
        raters = {
            "raters": len({a["rater"] for a in every}),
            "flagged_raters": len(flagged),
            "answers_used": len(answers),
            "answers": len(every),
        }
        return {"systems": table, "preference": tests, "raters": raters}

    def export_csv(self) -> str:
        """All answers as CSV, every text cell formula-safe (``safe_cell``)."""
        answers = self.answers()
        buffer = io.StringIO()
        fields = list(answers[0]) if answers else ["rater", "pair"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: safe_cell(v) for k, v in a.items()} for a in answers)
        return buffer.getvalue()

    def export_json(self) -> str:
        return json.dumps({"exported_at": datetime.now(UTC).isoformat(), "answers": self.answers()}, indent=1)


def flagged_raters(answers: list[dict]) -> set[str]:
    """Raters who failed an attention check: preferred the degraded clip, or rated its
    harmony above the original's."""
    return {
        a["rater"]
        for a in answers
        if a["attention_check"] and (a["preferred"] == ATTENTION_SYSTEM or a["baseline_harmony"] > a["fgg_harmony"])
    }


def degrade(midi_path: Path, out: Path) -> None:
    """The attention check's clip: the accompaniment a semitone sharp, the melody unchanged."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    for inst in midi.instruments:
        if "melody" not in inst.name.lower():
            for note in inst.notes:
                note.pitch = min(note.pitch + 1, 127)
    midi.write(str(out))


def add_attention_pair(pool_dir: Path = POOL_DIR) -> dict:
    """Add (or keep) the pool's attention-check pair, built from its first FGG clip."""
    manifest_path = pool_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    existing = next((p for p in manifest["pairs"] if p["system_y"] == ATTENTION_SYSTEM), None)
    if existing:
        return existing
    source = next(p for p in manifest["pairs"] if p["system_x"] == "fgg")
    name = Path(source["midi_x"]).stem + f"_{ATTENTION_SYSTEM}.mid"
    degrade(pool_dir / source["midi_x"], pool_dir / name)
    pair = {
        "key": f"{Path(source['midi_x']).stem}-attention",
        "segment": source["segment"],
        "song_id": source.get("song_id"),
        "system_x": "fgg",
        "system_y": ATTENTION_SYSTEM,
        "midi_x": source["midi_x"],
        "midi_y": name,
    }
    manifest["pairs"].append(pair)
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return pair


def rating_value(value, name: str) -> int:
    """A rating as sent by any client -> int 1-5; anything else (3.5, True, NaN, "4", None)
    is refused with a message naming the rating."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"rating '{name}' must be a whole number 1-5, got {value!r}")
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= 5:
        raise ValueError(f"rating '{name}' must be a whole number 1-5, got {value!r}")
    return int(value)


def safe_cell(value):
    """A CSV cell a spreadsheet will not run: text starting with = + - @ or a control
    character gets a leading apostrophe (OWASP's CSV-injection advice); numbers pass."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AdminGate:
    """The admin password (``FGG_ADMIN_PASSWORD``), compared in constant time, with an
    exponential back-off per client after wrong guesses: after n failures in a row the
    client waits 2^(n-1) s (at most ``max_wait``) before the next guess counts."""

    def __init__(self, password: str | None = None, max_wait: float = 300.0, clock=time.monotonic):
        self._password = os.environ.get("FGG_ADMIN_PASSWORD") if password is None else password
        self.max_wait, self._clock = max_wait, clock
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (failures in a row, locked until)
        self._lock = threading.Lock()

    def check(self, password: str | None, client: str) -> None:
        """Return if ``password`` is right; else raise ``PermissionError`` saying why."""
        if not self._password:
            raise PermissionError("the admin view is disabled: FGG_ADMIN_PASSWORD is not set on the server")
        with self._lock:
            failures, until = self._failures.get(client, (0, 0.0))
            now = self._clock()
            if now < until:
                raise PermissionError(f"too many wrong passwords: try again in {math.ceil(until - now)} s")
            if password and hmac.compare_digest(str(password).encode(), self._password.encode()):
                self._failures.pop(client, None)
                return
            failures += 1
            self._failures[client] = (failures, now + min(2.0 ** (failures - 1), self.max_wait))
        raise PermissionError("wrong admin password")


def build_pool(n_pairs: int, out: Path = POOL_DIR, model="paper", baselines=DEFAULT_BASELINES, seed: int = 0) -> Path:
    """Generate ``n_pairs`` pairs (FGG vs a baseline, cycling through ``baselines``) on
    evenly spread validation segments with ``model`` (a shipped model's name or a checkpoint
    path) and write their MIDI + manifest.json, plus the attention-check pair."""
    from eval.baselines import STOCHASTIC, EvalContext, SegmentBatch, run_system
    from eval.run import item_seed, select_segments
    from fgg.checkpoint import load_model, resolve_checkpoint
    from fgg.data import load_valid_segments
    from fgg.generate import piece_midi

    segments = load_valid_segments()
    chosen = select_segments(len(segments["song_id"]), n_pairs)
    ctx = EvalContext(load_model(resolve_checkpoint(model))[0])
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for n, seg in enumerate(chosen):
        baseline = baselines[n % len(baselines)]
        batch = SegmentBatch.from_segments(segments, [seg])
        seeds = [item_seed(seed, int(seg))]
        rolls = {"fgg": run_system("fgg", batch, seeds, ctx).rolls[0]}
        unguided = run_system("no_fgg", batch, seeds, ctx).rolls if baseline in STOCHASTIC else None
        rolls[baseline] = run_system(baseline, batch, seeds, ctx, unguided=unguided).rolls[0]
        names = {}
        for system, roll in rolls.items():
            names[system] = f"seg{int(seg):04d}_{system}.mid"
            piece_midi(segments["melody"][seg], roll, float(segments["tempo"][seg])).write(str(out / names[system]))
        pairs.append(
            {
                "key": f"seg{int(seg):04d}-fgg-vs-{baseline}",
                "segment": int(seg),
                "song_id": int(segments["song_id"][seg]),
                "system_x": "fgg",
                "system_y": baseline,
                "midi_x": names["fgg"],
                "midi_y": names[baseline],
            }
        )
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "built_by": f"python -m demo.listening build --pairs {n_pairs} --model {model}",
                "model": str(model),
                "pairs": pairs,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    add_attention_pair(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.listening", description="Listening-test pool and results.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="generate the pool of pairs")
    build.add_argument("--pairs", type=int, default=12)
    build.add_argument("--out", default=str(POOL_DIR))
    build.add_argument("--model", default=DEFAULT_MODEL, choices=shipped("accompaniment"))
    build.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    build.add_argument("--baselines", default=",".join(DEFAULT_BASELINES))
    results = sub.add_parser("results", help="print per-system means and preference tests as JSON")
    results.add_argument("--html", help="also write the admin view's plots to this HTML file")
    export = sub.add_parser("export", help="print all answers as CSV or JSON (needs the admin password)")
    export.add_argument("--password", required=True)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    args = parser.parse_args(argv)
    if args.command == "build":
        manifest = build_pool(
            args.pairs, Path(args.out), args.checkpoint or args.model, tuple(args.baselines.split(","))
        )
        print(json.dumps({"manifest": str(manifest), "pairs": args.pairs}))
        return 0
    store = ListeningStore()
    if args.command == "results":
        answers = store.answers()
        result = store.results(answers)
        print(json.dumps(result, indent=2))
        if args.html:
            from demo.listening_ui import results_figures

            text, figures = results_figures(result, answers)
            parts = [f"<p>{text}</p>"] + [
                f.to_html(full_html=False, include_plotlyjs=i == 0)
                for i, f in enumerate(x for x in figures if x is not None)
            ]
            Path(args.html).write_text("<html><body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
        return 0
    try:
        AdminGate().check(args.password, "cli")
    except PermissionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(store.export_csv() if args.format == "csv" else store.export_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
