"""Build a study (``demo.listening.study``): every clip it plays, as content-addressed MIDI,
and its items (what one screen shows), in ``assets/studies/<id>/``:

    items.json          the study's id and config hash, its prompts, its items
    midi/<hash>.mid     each clip once, named by the SHA-256 of its bytes (16 hex digits)

Prompts are POP909 validation segments, evenly spread (``eval.run.select_segments``); a prompt's
id is ``seg<index>`` (``seg0311``). Our systems sample each prompt with the seed
``eval.run.item_seed(seed, segment)``, as the evaluation does. A system made elsewhere is a
folder of ``<prompt-id>.mid`` files and a ``manifest.json`` (``{"system": ..., "made_by": ...}``):
every prompt must have its file and no file may name another prompt; each file's tempo must be
the prompt's and its music must fit the prompt's length. The first mismatch is named.

Items by design: ``reference``, the reference against another system per prompt (``cycle``: the
others in turn, one pair per prompt; ``all``: every other system); ``round_robin``, pairs of
systems (``cycle``: the pairs in turn; ``all``: every pair); ``multi_stimulus``, every system
on one page with a hidden reference and an anchor. Pairwise designs add ``attention`` items: the
reference against itself with the accompaniment a semitone sharp (``degrade``).

The audio is rendered once (``demo.listening.clips.RenderCache``, loudness-normalised to one
target) and the build prints a summary: items, clips, the loudness spread of the renders.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import tempfile
from pathlib import Path

import pretty_midi
import soundfile

from demo import audio
from demo.listening.clips import RenderCache
from demo.listening.study import ANCHOR, BUILT_DIR, DEGRADED, HIDDEN_REFERENCE, REPO_ROOT, Study, StudySystem

PROMPT_BEATS = 16  # a prompt is 4 bars of 4/4
TEMPO_TOLERANCE_BPM = 0.5
LENGTH_TOLERANCE_BEATS = 1.0  # a clip may end up to a beat after the prompt (a held last note)


class BuildError(ValueError):
    """A study whose clips do not match; the message names the first mismatch."""


def degrade(midi: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """The attention check's and the anchor's clip: the accompaniment a semitone sharp (every
    note clashes with the melody), the melody unchanged."""
    for inst in midi.instruments:
        if "melody" not in inst.name.lower():
            for note in inst.notes:
                note.pitch = min(note.pitch + 1, 127)
    return midi


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mid"
        midi.write(str(path))
        return path.read_bytes()


def prompt_id(segment: int) -> str:
    return f"seg{segment:04d}"


def study_prompts(study: Study, segments: dict) -> list[dict]:
    """The study's prompts: id, segment, song, tempo and bars."""
    from eval.run import select_segments  # the evaluation stack (torch) only where a study is built

    chosen = select_segments(len(segments["song_id"]), study.prompt_count)
    return [
        {
            "id": prompt_id(int(s)),
            "segment": int(s),
            "song_id": int(segments["song_id"][s]),
            "tempo": float(segments["tempo"][s]),
            "bars": 4,
        }
        for s in chosen
    ]


def our_clips(system: StudySystem, prompts: list[dict], segments: dict, seed: int) -> dict[str, pretty_midi.PrettyMIDI]:
    """Each prompt played by one of our systems: {prompt id: MIDI}."""
    # The model stack loads only when a study is built, never for the store or the pages.
    from eval.baselines import EvalContext, SegmentBatch, run_system
    from eval.run import item_seed
    from fgg.checkpoint import load_model, resolve_checkpoint
    from fgg.generate import piece_midi
    from fgg.sampling import SamplingOptions

    default = SamplingOptions()  # the study's strength and steps where it sets them
    options = SamplingOptions(
        strength=default.strength if system.strength is None else system.strength,
        steps=default.steps if system.steps is None else system.steps,
    )
    ctx = EvalContext(load_model(resolve_checkpoint(system.model or "paper"))[0], options=options)
    index = [p["segment"] for p in prompts]
    batch = SegmentBatch.from_segments(segments, index)  # one batch: each item has its own seed
    rolls = run_system(system.system or "fgg", batch, [item_seed(seed, s) for s in index], ctx).rolls
    clips = {}
    for prompt, roll in zip(prompts, rolls, strict=True):
        clips[prompt["id"]] = piece_midi(segments["melody"][prompt["segment"]], roll, prompt["tempo"])
    return clips


def folder_clips(system: StudySystem, prompts: list[dict]) -> dict[str, pretty_midi.PrettyMIDI]:
    """Each prompt as MIDI made elsewhere (``<prompt-id>.mid``), checked against the prompt."""
    folder = system.folder
    assert folder is not None
    if not (folder / "manifest.json").is_file():
        raise BuildError(f"{system.name}: no manifest.json in {folder.name}/ (see demo/listening/build.py)")
    ids = {p["id"] for p in prompts}
    if stray := sorted(f.stem for f in folder.glob("*.mid") if f.stem not in ids):
        raise BuildError(f"{system.name}: {stray[0]}.mid is for a prompt this study does not have")
    clips = {}
    for prompt in prompts:
        path = folder / f"{prompt['id']}.mid"
        if not path.is_file():
            raise BuildError(f"{system.name}: no {path.name} for prompt {prompt['id']}")
        try:
            midi = pretty_midi.PrettyMIDI(str(path))
        except Exception as err:  # pretty_midi raises anything from a broken file
            raise BuildError(f"{system.name}/{path.name}: not a readable MIDI file ({err})") from None
        check_clip(midi, prompt, f"{system.name}/{path.name}")
        clips[prompt["id"]] = midi
    return clips


def check_clip(midi: pretty_midi.PrettyMIDI, prompt: dict, name: str) -> None:
    """A clip made elsewhere plays at the prompt's tempo, for the prompt's length."""
    _, tempi = midi.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else 120.0
    if abs(tempo - prompt["tempo"]) > TEMPO_TOLERANCE_BPM:
        raise BuildError(f"{name}: tempo {tempo:.1f} BPM, the prompt's is {prompt['tempo']:.1f} BPM")
    beats = midi.get_end_time() * prompt["tempo"] / 60
    if not midi.instruments or not any(i.notes for i in midi.instruments):
        raise BuildError(f"{name}: no notes")
    if beats > PROMPT_BEATS + LENGTH_TOLERANCE_BEATS:
        raise BuildError(f"{name}: {beats:.1f} beats long, the prompt is {PROMPT_BEATS} beats (4 bars)")


def item_systems(study: Study, n: int) -> list[tuple[str, ...]]:
    """The systems of the items of the ``n``-th prompt (by the study's design)."""
    names = [s.name for s in study.systems]
    others = [s for s in names if s != study.reference]
    if study.design == "multi_stimulus":
        return [(*names, HIDDEN_REFERENCE, ANCHOR)]
    pairs: list[tuple[str, ...]] = (
        [(study.reference, other) for other in others]
        if study.design == "reference"
        else list(itertools.combinations(names, 2))
    )
    return pairs if study.pairs_per_prompt == "all" else [pairs[n % len(pairs)]]


def build_study(study: Study, out: Path | None = None, segments: dict | None = None) -> Path:
    """Write the study's clips and ``items.json`` (see the module docstring); returns its path."""
    from fgg.data import load_valid_segments

    out = out or BUILT_DIR / study.id
    segments = segments if segments is not None else load_valid_segments()
    prompts = study_prompts(study, segments)
    clips = {
        s.name: our_clips(s, prompts, segments, study.seed) if s.ours else folder_clips(s, prompts)
        for s in study.systems
    }
    for prompt in prompts:  # the checks: the reference's clip again, and degraded
        reference = clips[study.reference][prompt["id"]]
        clips.setdefault(HIDDEN_REFERENCE, {})[prompt["id"]] = reference
        clips.setdefault(DEGRADED, {})[prompt["id"]] = degrade(pretty_midi.PrettyMIDI(_as_file(reference)))
    clips[ANCHOR] = clips[DEGRADED]
    (out / "midi").mkdir(parents=True, exist_ok=True)
    files: dict[tuple[str, str], str] = {}
    for system, per_prompt in clips.items():
        for pid, midi in per_prompt.items():
            data = midi_bytes(midi)
            name = f"{hashlib.sha256(data).hexdigest()[:16]}.mid"
            (out / "midi" / name).write_bytes(data)
            files[system, pid] = name
    items = _items(study, prompts, files)
    used = {clip["midi"] for item in items for clip in item["clips"]}
    for stale in (out / "midi").glob("*.mid"):
        if stale.name not in used:
            stale.unlink()
    manifest = {
        "study": study.id,
        "config_hash": study.config_hash,
        "built_by": f"python -m demo.listening build {_shown_path(study.path)}",
        "prompts": prompts,
        "items": items,
    }
    path = out / "items.json"
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def _items(study: Study, prompts: list[dict], files: dict[tuple[str, str], str]) -> list[dict]:
    items = []
    for n, prompt in enumerate(prompts):
        for systems in item_systems(study, n):
            items.append(_item(prompt["id"], "trial", systems, files))
    if study.design != "multi_stimulus":
        for prompt in prompts[: study.attention_items]:
            items.append(_item(prompt["id"], "attention", (study.reference, DEGRADED), files))
    return items


def _item(pid: str, kind: str, systems: tuple[str, ...], files: dict[tuple[str, str], str]) -> dict:
    key = f"{pid}:{kind}:{'|'.join(systems)}"
    return {
        "key": key,
        "prompt": pid,
        "kind": kind,
        "clips": [{"system": s, "midi": files[s, pid]} for s in systems],
    }


def _as_file(midi: pretty_midi.PrettyMIDI) -> io.BytesIO:
    """A MIDI object's bytes, to read a copy from (pretty_midi has no copy)."""
    return io.BytesIO(midi_bytes(midi))


def _shown_path(path: Path | None) -> str:
    if path is None:
        return "?"
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path.name


def export_prompts(study: Study, out: Path, system: str | None = None, segments: dict | None = None) -> Path:
    """What another model needs to play the study's prompts, or a system's clips as a folder a
    study can name (``folder = ...``). Without ``system``: ``prompts.json`` (id, tempo, bars,
    the chord of every beat as a Harte label) and ``<id>.melody.mid``. With ``system``, one of
    our evaluation systems (``ground_truth``: the human POP909 accompaniment): ``<id>.mid``
    for every prompt and ``manifest.json``."""
    from fgg.data import load_valid_segments
    from fgg.pianoroll import rolls_to_midi

    segments = segments if segments is not None else load_valid_segments()
    prompts = study_prompts(study, segments)
    out.mkdir(parents=True, exist_ok=True)
    if system is not None:
        clips = our_clips(StudySystem(system, system=system, model="paper"), prompts, segments, study.seed)
        for pid, midi in clips.items():
            midi.write(str(out / f"{pid}.mid"))
        made_by = f"python -m demo.listening prompts {_shown_path(study.path)} --system {system}"
        manifest = {"system": system, "made_by": made_by, "prompts": [p["id"] for p in prompts]}
        path = out / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return path
    for prompt in prompts:
        seg = prompt["segment"]
        prompt["chords_per_beat"] = [str(label) for label in segments["chord_labels"][seg]]
        rolls_to_midi({"melody": segments["melody"][seg]}, prompt["tempo"]).write(
            str(out / f"{prompt['id']}.melody.mid")
        )
    path = out / "prompts.json"
    path.write_text(json.dumps({"study": study.id, "prompts": prompts}, indent=1), encoding="utf-8")
    return path


def build_summary(items_path: Path) -> dict:
    """What a build made: items by kind, clips, and the renders' loudness spread (each clip
    rendered now, unless the cache has it: the app then plays it at once)."""
    built = json.loads(items_path.read_text(encoding="utf-8"))
    files = sorted({c["midi"] for item in built["items"] for c in item["clips"]})
    renders = RenderCache()
    levels = []
    for name in files:
        music, rate = soundfile.read(renders.wav(items_path.parent / "midi" / name), dtype="float32")
        levels.append(audio.loudness(music, rate))
    kinds = sorted({item["kind"] for item in built["items"]})
    return {
        "study": built["study"],
        "config_hash": built["config_hash"],
        "items": {kind: sum(item["kind"] == kind for item in built["items"]) for kind in kinds},
        "prompts": len(built["prompts"]),
        "clips": len(files),
        "loudness_lufs": {"min": round(min(levels), 2), "max": round(max(levels), 2)} if levels else None,
        "written": str(items_path),
    }
