"""A listening study is a file: ``studies/<id>.toml`` says what raters hear and what they are
asked, so a researcher runs their own study (their systems, design and questions) without
touching code. This module reads and checks one; ``demo.listening.build`` makes its clips.

A study file::

    title = "FGG against its baselines"
    instructions = "Each pair plays ..."          # Markdown, shown above the players
    consent = "I agree that ..."                  # the box a rater ticks before Start
    design = "reference"                          # reference | round_robin | multi_stimulus
    reference = "fgg"                             # the system the others are heard against
    pairs_per_prompt = "cycle"                    # cycle: one pair per prompt, others in turn; all
    items_per_rater = 13                          # screens a rater answers (all items if larger)
    target_raters = 30
    open = true                                   # served at /listen-<id>; false: results only

    [prompts]                                     # what every system plays to
    count = 12                                    # POP909 validation segments, evenly spread
    seed = 0                                      # the sampling seed of our systems

    [[systems]]                                   # one of ours: an evaluation system on a model
    name = "fgg"
    system = "fgg"
    model = "paper"
    strength = 1.0                                # optional: FGG strength, sampling steps
    steps = 10

    [[systems]]                                   # or MIDI made elsewhere, one file per prompt
    name = "their_model"
    folder = "midi/their_model"                   # relative to the study file; <prompt-id>.mid
                                                  # and manifest.json (see demo.listening.build)
    [[criteria]]
    name = "harmony"
    question = "Does it fit the chords and the melody?"
    scale = [1, 5]
    labels = {1 = "poor", 5 = "excellent"}

    [preference]                                  # optional
    question = "Which do you prefer overall?"

    [attention]                                   # optional: the reference against itself with
    items = 1                                     # the accompaniment a semitone sharp

A multi-stimulus study (MUSHRA-style) shows every system's clip of one prompt on one page,
plus a hidden reference (the reference's clip again) and an anchor (that clip degraded).
Every key is checked: an unknown or missing one, a wrong type or a value out of range is
refused with the file, the key and what was expected (``StudyError``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STUDIES_DIR = REPO_ROOT / "studies"
BUILT_DIR = REPO_ROOT / "assets" / "studies"  # python -m demo.listening build writes here
DESIGNS = ("reference", "round_robin", "multi_stimulus")
PAIRINGS = ("cycle", "all")
MAX_CLIPS_PER_ITEM = 7  # a multi-stimulus page: up to 5 systems, the hidden reference and the anchor
MAX_CRITERIA = 6
MAX_SCALE_POINTS = 11
HIDDEN_REFERENCE, ANCHOR, DEGRADED = "hidden_reference", "anchor", "degraded"
RESERVED_NAMES = (HIDDEN_REFERENCE, ANCHOR, DEGRADED)
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Criterion:
    name: str
    question: str
    scale: tuple[int, int] = (1, 5)
    labels: dict[int, str] = field(default_factory=dict)

    @property
    def points(self) -> tuple[int, ...]:
        return tuple(range(self.scale[0], self.scale[1] + 1))


@dataclass(frozen=True)
class StudySystem:
    """One of ours (``system`` on ``model``) or MIDI made elsewhere (``folder``)."""

    name: str
    system: str | None = None
    model: str | None = None
    strength: float | None = None
    steps: int | None = None
    folder: Path | None = None

    @property
    def ours(self) -> bool:
        return self.folder is None


@dataclass(frozen=True)
class Study:
    id: str
    title: str
    instructions: str
    consent: str
    design: str
    reference: str
    systems: tuple[StudySystem, ...]
    criteria: tuple[Criterion, ...]
    prompt_count: int
    seed: int = 0
    pairs_per_prompt: str = "cycle"
    preference: str | None = None
    attention_items: int = 0
    items_per_rater: int = 1000
    target_raters: int = 30
    open: bool = True
    path: Path | None = None

    @property
    def config_hash(self) -> str:
        """A short hash of everything that defines the study (not its file's layout or comments):
        stored with every answer, so results always say which study they answer."""
        config = asdict(self) | {"path": None}
        for system in config["systems"]:  # a MIDI folder as the file names it, wherever the checkout is
            if system["folder"] is not None and self.path is not None:
                system["folder"] = Path(os.path.relpath(system["folder"], self.path.parent)).as_posix()
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def system(self, name: str) -> StudySystem:
        return next(s for s in self.systems if s.name == name)


class _Table:
    """A TOML table being read: each key taken once, the rest refused as unknown."""

    def __init__(self, data: object, where: str):
        if not isinstance(data, dict):
            raise StudyError(f"{where}: expected a table")
        self.data, self.where = data, where
        self.taken: set[str] = set()

    def take(self, key: str, kind: type | tuple[type, ...], default: object = ..., check=None):
        self.taken.add(key)
        if key not in self.data:
            if default is ...:
                raise StudyError(f"{self.where}: missing key '{key}'")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # True is an int
            raise StudyError(f"{self.where}.{key}: expected {_kind_name(kind)}, got {value!r}")
        if check is not None and (problem := check(value)):
            raise StudyError(f"{self.where}.{key}: {problem}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.taken)
        if unknown:
            raise StudyError(f"{self.where}: unknown key '{unknown[0]}'")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _between(lo: float, hi: float):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}, got {v}"


def _one_of(options: tuple[str, ...]):
    return lambda v: None if v in options else f"must be one of {', '.join(options)}, got {v!r}"


def _name(v: str) -> str | None:
    if v in RESERVED_NAMES:
        return f"'{v}' is reserved for the study's checks"
    return None if NAME.match(v) else f"'{v}' must be 1-32 lower-case letters, digits, '_' or '-'"


def _criterion(data: object, where: str) -> Criterion:
    table = _Table(data, where)
    name = table.take("name", str, check=_name)
    question = table.take("question", str, check=lambda v: None if 0 < len(v) <= 300 else "1-300 characters")
    scale = table.take("scale", list, [1, 5])
    if len(scale) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale):
        raise StudyError(f"{where}.scale: expected [lowest, highest] whole numbers, got {scale!r}")
    if not 2 <= scale[1] - scale[0] + 1 <= MAX_SCALE_POINTS:
        raise StudyError(f"{where}.scale: 2 to {MAX_SCALE_POINTS} points, got {scale!r}")
    labels = {}
    for key, label in table.take("labels", dict, {}).items():
        if not key.lstrip("-").isdigit() or not scale[0] <= int(key) <= scale[1] or not isinstance(label, str):
            raise StudyError(f"{where}.labels: '{key}' is not a point of the scale {scale} with a text label")
        labels[int(key)] = label
    table.done()
    return Criterion(name, question, (scale[0], scale[1]), labels)


def _system(data: object, where: str, study_dir: Path, folders: bool = True) -> StudySystem:
    table = _Table(data, where)
    name = table.take("name", str, check=_name)
    folder = table.take("folder", str, None)
    if folder is not None:
        table.done()  # MIDI made elsewhere: nothing of ours to configure
        path = (study_dir / folder).resolve()
        if folders and not path.is_dir():
            raise StudyError(f"{where}.folder: no folder '{folder}' beside the study file")
        return StudySystem(name, folder=path)
    system = table.take("system", str)
    model = table.take("model", str, "paper")
    strength = table.take("strength", (int, float), None, _between(0, 1))
    steps = table.take("steps", int, None, _between(1, 1000))
    table.done()
    return StudySystem(name, system, model, None if strength is None else float(strength), steps)


def load_study(path: str | Path, folders: bool = True) -> Study:
    """Read and check ``studies/<id>.toml`` (the id is the file's name); ``folders=False``
    accepts a system's MIDI folder that is not there yet (to write it: ``export_prompts``)."""
    path = Path(path)
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"no study file {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise StudyError(f"{where}: not valid TOML ({err})") from None
    if not NAME.match(path.stem):
        raise StudyError(f"{where}: a study's file name is its id: lower-case letters, digits, '_' or '-'")
    table = _Table(data, where)

    def text(key: str, limit: int) -> str:
        return table.take(key, str, check=lambda v: None if 0 < len(v) <= limit else f"1-{limit} characters")

    title, instructions, consent = text("title", 120), text("instructions", 3000), text("consent", 1000)
    design = table.take("design", str, check=_one_of(DESIGNS))
    systems = tuple(
        _system(s, f"{where}: systems[{n}]", path.parent, folders) for n, s in enumerate(table.take("systems", list))
    )
    criteria = tuple(_criterion(c, f"{where}: criteria[{n}]") for n, c in enumerate(table.take("criteria", list)))
    prompts = _Table(table.take("prompts", dict), f"{where}: prompts")
    preference = table.take("preference", dict, None)
    attention = table.take("attention", dict, None)
    study = Study(
        id=path.stem,
        title=title,
        instructions=instructions,
        consent=consent,
        design=design,
        reference=table.take("reference", str),
        systems=systems,
        criteria=criteria,
        prompt_count=prompts.take("count", int, check=_between(1, 500)),
        seed=prompts.take("seed", int, 0, _between(0, 2**31 - 1)),
        pairs_per_prompt=table.take("pairs_per_prompt", str, "cycle", _one_of(PAIRINGS)),
        preference=_Table(preference, f"{where}: preference").take("question", str) if preference else None,
        attention_items=_Table(attention, f"{where}: attention").take("items", int, check=_between(0, 10))
        if attention
        else 0,
        items_per_rater=table.take("items_per_rater", int, 1000, _between(1, 1000)),
        target_raters=table.take("target_raters", int, 30, _between(1, 100_000)),
        open=table.take("open", bool, True),
        path=path,
    )
    prompts.done()
    table.done()
    _check_whole(study, where)
    return study


def _check_whole(study: Study, where: str) -> None:
    """What no single key shows: names unique, the reference among the systems, a page's size."""
    names = [s.name for s in study.systems]
    if len(names) < 2:
        raise StudyError(f"{where}: systems: a study compares at least 2 systems, got {len(names)}")
    if duplicate := next((n for n in names if names.count(n) > 1), None):
        raise StudyError(f"{where}: systems: the name '{duplicate}' is used twice")
    if study.reference not in names:
        raise StudyError(f"{where}.reference: '{study.reference}' is not one of the systems ({', '.join(names)})")
    if not study.criteria and study.preference is None:
        raise StudyError(f"{where}: a study asks something: give criteria, a preference or both")
    if len(study.criteria) > MAX_CRITERIA:
        raise StudyError(f"{where}: criteria: at most {MAX_CRITERIA}, got {len(study.criteria)}")
    criteria = [c.name for c in study.criteria]
    if duplicate := next((n for n in criteria if criteria.count(n) > 1), None):
        raise StudyError(f"{where}: criteria: the name '{duplicate}' is used twice")
    if study.design == "multi_stimulus" and len(names) + 2 > MAX_CLIPS_PER_ITEM:
        raise StudyError(
            f"{where}: systems: a multi-stimulus page holds at most {MAX_CLIPS_PER_ITEM - 2} systems "
            f"(with the hidden reference and the anchor), got {len(names)}"
        )
    checked = study.attention_items or study.design == "multi_stimulus"
    if checked and not study.system(study.reference).ours:  # whose melody track is known
        raise StudyError(
            f"{where}.reference: the attention check and the anchor degrade the reference's accompaniment, "
            f"so the reference must be one of our systems, not '{study.reference}' (MIDI made elsewhere)"
        )


def study_paths(folder: Path = STUDIES_DIR) -> list[Path]:
    """The study files in ``folder``, by id."""
    return sorted(folder.glob("*.toml"))


@dataclass(frozen=True)
class BuiltStudy:
    """A study and what its build wrote (``demo.listening.build``): its items, each a dict
    ``{"key", "prompt", "kind", "clips": [{"system", "midi"}, …]}``, the MIDI under ``folder``."""

    study: Study
    folder: Path
    items: tuple[dict, ...]

    @property
    def id(self) -> str:
        return self.study.id

    @property
    def clips_per_item(self) -> int:
        """Clips on one screen: the same on every item of a study, so one page layout serves it."""
        return max((len(item["clips"]) for item in self.items), default=2)


def load_built(study: Study, folder: Path | None = None) -> BuiltStudy:
    """The build of ``study``; refused when missing or made from another version of its file."""
    folder = folder or BUILT_DIR / study.id
    path = folder / "items.json"
    if not path.is_file():
        raise StudyError(f"{study.id}: not built yet: python -m demo.listening build studies/{study.id}.toml")
    built = json.loads(path.read_text(encoding="utf-8"))
    if built.get("config_hash") != study.config_hash:
        raise StudyError(f"{study.id}: built from another version of its file: rebuild it")
    sizes = {len(item["clips"]) for item in built["items"]}
    if len(sizes) > 1:
        raise StudyError(f"{study.id}: its items hold {sorted(sizes)} clips; one page layout needs one number")
    return BuiltStudy(study, folder, tuple(built["items"]))


def shipped_studies(folder: Path = STUDIES_DIR, built: Path = BUILT_DIR) -> list[BuiltStudy]:
    """Every study file in ``folder`` with its build (a study not built, or built from an older
    file, is refused by name: an app must not serve a study other than the file says)."""
    return [load_built(load_study(path), built / path.stem) for path in study_paths(folder)]
