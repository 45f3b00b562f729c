"""What the app's buttons do, as plain Python (the Blocks in ``demo/ui.py`` only wire these up).

Every entry point validates its inputs and raises ``ValueError`` with a message meant for
the user; the UI turns those into ``gr.Error`` so no stack trace ever reaches the page.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from demo.audio import write_wav
from demo.figures import diff_figure, piano_roll_figure
from eval import metrics as M
from eval.baselines import SYSTEMS, EvalContext, SegmentBatch, run_system
from eval.chord_metrics import MIDI_TEMPO, label_chord_accuracy
from fgg.chords import PITCH_NAMES, Progression, parse_progression
from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.generate import RHYTHM_PATTERNS, SCALE_MODES, GenerationResult, Generator, allowed_pitch_classes, \
    cut_progression_warnings, fit_progression, load_melody, rhythm_counts
from fgg.guidance import SCALE_TABLES
from fgg.model import count_parameters
from fgg.pianoroll import BEATS_PER_BAR, SEGMENT_BARS, SEGMENT_STEPS, STEPS_PER_BAR, roll_to_notes, rolls_to_midi

MAX_MIDI_BYTES = 1_000_000
BAR_RANGE = (4, 32)
TEMPO_RANGE = (40, 220)
STEP_RANGE = (2, 50)
CFG_RANGE = (1.0, 12.0)
RHYTHM_CHOICES = ["none", "from segment"] + list(RHYTHM_PATTERNS)
SCALE_CHOICES = ["from chords", "major", "minor", "dorian", "mixolydian", "pentatonic", "blues", "custom"]
MODEL_BLURBS = {"paper": "best quality", "small": "fastest"}
EXAMPLES = {
    "Pop I–V–vi–IV": "C G | Am F",
    "Jazz ii–V–I": "Dm7 | G7 | Cmaj7 | Cmaj7",
    "Minor-key ballad": "Am | F | Dm | E7",
    "Dorian vamp": "Dm7 | G | Dm7 | G",
}


@dataclass
class Request:
    """A resolved generation request (what the model will be conditioned on)."""
    progression: Progression  # exactly ``bars`` bars
    melody: np.ndarray | None  # (2, T, 64) bool
    counts: np.ndarray | None  # (T,) onset counts, None = null rhythm
    scale: object  # None (from chords), "D dorian", or pitch classes
    tempo: float
    segment: int | None
    scale_table: str = "ours"
    scale_mode: str = "with_chords"
    warnings: tuple[str, ...] = ()


def clamp(value, lo, hi, name: str):
    """Re-check a widget value on the server: numbers only, clamped into range."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite")
    return min(max(value, lo), hi)


def check_midi_upload(path) -> str | None:
    """None without an upload; else the path, after the size checks (corrupt files are
    reported by ``load_melody``)."""
    if path in (None, ""):
        return None
    path = getattr(path, "name", path)
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"the melody file {Path(path).name!r} is empty")
    if size > MAX_MIDI_BYTES:
        raise ValueError(f"the melody file {Path(path).name!r} is {size / 1e6:.1f} MB; the limit is 1 MB")
    return str(path)


def chords_text_from_labels(labels) -> str:
    """Per-beat Harte labels -> progression text (one token per chord change inside a bar)."""
    bars = []
    for b in range(0, len(labels), BEATS_PER_BAR):
        beats = [str(x) for x in labels[b:b + BEATS_PER_BAR]]
        if len(set(beats)) == 1:
            bars.append(beats[0])
        elif beats[0] == beats[1] and beats[2] == beats[3]:
            bars.append(f"{beats[0]} {beats[2]}")
        else:
            bars.append(" ".join(beats))
    return " | ".join(bars)


def choice(value, options, name: str):
    """A dropdown value re-checked on the server."""
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, options))}")
    return value


class Controller:
    """``generators``: the served models by name, the first being the default (the app
    loads each checkpoint once, here)."""

    def __init__(self, generators: dict[str, Generator], segments_file: str | os.PathLike = VALID_SEGMENTS_FILE):
        if not generators:
            raise ValueError("the app needs at least one model")
        self.generators = dict(generators)
        self.default_model = next(iter(self.generators))
        self.segments = load_valid_segments(segments_file)

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for the Model dropdown, e.g. "paper — 26.6 M, best quality"."""
        return [(f"{name} — {count_parameters(g.model) / 1e6:.1f} M" +
                 (f", {MODEL_BLURBS[name]}" if name in MODEL_BLURBS else ""), name)
                for name, g in self.generators.items()]

    def generator(self, model=None) -> Generator:
        return self.generators[choice(model or self.default_model, list(self.generators), "model")]

    def eval_context(self, model=None) -> EvalContext:
        gen = self.generator(model)
        return EvalContext(gen.model, gen.schedule)

    # -- POP909 segments

    def segment_choices(self) -> list[tuple[str, int]]:
        seg = self.segments
        return [(f"song {int(s):03d} · bars {int(b) + 1}–{int(b) + SEGMENT_BARS}", i)
                for i, (s, b) in enumerate(zip(seg["song_id"], seg["bar"]))]

    def _segment(self, index) -> int | None:
        if index in (None, "", -1):
            return None
        index = int(clamp(index, -1, len(self.segments["song_id"]) - 1, "segment"))
        return None if index < 0 else index

    def segment_fields(self, index) -> tuple[str, float]:
        """(chord text, tempo) of a validation segment, to fill the inputs."""
        i = self._segment(index)
        if i is None:
            raise ValueError("choose a POP909 segment first")
        return chords_text_from_labels(self.segments["chord_labels"][i]), round(float(self.segments["tempo"][i]))

    # -- requests

    def resolve(self, chords: str, segment=None, melody_file=None, bars=4, tempo=90, rhythm="none",
                scale="from chords", tonic="C", custom_scale="", scale_table="ours",
                scale_mode="with_chords") -> Request:
        progression = parse_progression(chords)
        bars = int(clamp(bars, *BAR_RANGE, "bars"))
        scale_table = choice(scale_table or "ours", SCALE_TABLES, "scale table")
        scale_mode = choice(scale_mode or "with_chords", SCALE_MODES, "scale mode")
        warnings = tuple(cut_progression_warnings(progression, bars))
        tempo = clamp(tempo, *TEMPO_RANGE, "tempo")
        n_steps = bars * STEPS_PER_BAR
        seg = self._segment(segment)
        melody = None
        path = check_midi_upload(melody_file)
        if path is not None:
            melody = load_melody(path, n_steps)
        elif seg is not None:
            melody = load_melody(np.tile(self.segments["melody"][seg], (1, -(-n_steps // SEGMENT_STEPS), 1)), n_steps)
        rhythm = (rhythm or "none").strip()
        if rhythm == "from segment":
            if seg is None:
                raise ValueError("rhythm 'from segment' needs a POP909 segment: pick one or choose a pattern")
            counts = rhythm_counts(self.segments["onset_counts"][seg], n_steps)
        elif rhythm in RHYTHM_CHOICES:
            counts = rhythm_counts(None if rhythm == "none" else rhythm, n_steps)
        else:
            raise ValueError(f"unknown rhythm {rhythm!r}; choose one of {', '.join(RHYTHM_CHOICES)}")
        if scale in (None, "", "from chords"):
            scale_spec = None
        elif scale == "custom":
            tokens = [t for t in str(custom_scale or "").replace(",", " ").split() if t]
            if not tokens:
                raise ValueError("custom scale: list its notes, e.g. 'C D E G A'")
            scale_spec = tokens
        elif scale in SCALE_CHOICES:
            if tonic not in PITCH_NAMES:
                raise ValueError(f"unknown tonic {tonic!r}; choose one of {', '.join(PITCH_NAMES)}")
            scale_spec = f"{tonic} {scale}"
        else:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_CHOICES)}")
        progression = fit_progression(progression, bars)
        allowed_pitch_classes(progression, scale_spec)  # validates custom note names now
        return Request(progression, melody, counts, scale_spec, tempo, seg, scale_table, scale_mode, warnings)

    # -- tab 1: generate

    def generate(self, chords: str, segment=None, melody_file=None, bars=4, tempo=90, fgg=True, strength=1.0,
                 cfg_scale=7.5, rhythm="none", scale="from chords", tonic="C", custom_scale="", steps=10, seed=0,
                 progress=None, model=None, scale_table="ours", scale_mode="with_chords") -> tuple[str, str, object, dict]:
        """Returns (WAV path, MIDI path, piano-roll figure, metrics)."""
        generator = self.generator(model)
        req = self.resolve(chords, segment, melody_file, bars, tempo, rhythm, scale, tonic, custom_scale,
                           scale_table, scale_mode)
        result = generator.generate(
            req.progression, melody=req.melody, rhythm=req.counts, bars=req.progression.n_bars,
            cfg_scale=clamp(cfg_scale, *CFG_RANGE, "CFG scale"), fgg=bool(fgg), strength=clamp(strength, 0, 1, "strength"),
            scale=req.scale, steps=int(clamp(steps, *STEP_RANGE, "steps")), seed=int(clamp(seed, 0, 2**31 - 1, "seed")),
            tempo=req.tempo, progress=progress, scale_table=req.scale_table, scale_mode=req.scale_mode)
        result.warnings.extend(req.warnings)
        out = Path(tempfile.mkdtemp(prefix="fgg-"))
        midi_path = out / f"fgg_seed{result.seed}.mid"
        result.midi.write(str(midi_path))
        wav_path = write_wav(result.midi, out / f"fgg_seed{result.seed}.wav")
        figure = piano_roll_figure(result.accompaniment, result.melody, result.progression.labels, result.allowed,
                                   title=f"{result.n_bars} bars · seed {result.seed} · FGG {'on' if fgg else 'off'}")
        return str(wav_path), str(midi_path), figure, self.sample_metrics(result, out)

    def sample_metrics(self, result: GenerationResult, workdir: Path) -> dict:
        from smg_metrics import midi_to_chords_dp

        acc_path = workdir / "accompaniment_only.mid"
        rolls_to_midi({"accompaniment": result.accompaniment}, MIDI_TEMPO).write(str(acc_path))
        recognised = midi_to_chords_dp(str(acc_path)) if result.accompaniment[0].any() else []
        return ({"warnings": list(result.warnings)} if result.warnings else {}) | {
            "out_of_key_rate": round(M.out_of_key_rate(result.accompaniment, result.allowed), 4),
            "out_of_key_notes": result.out_of_key_notes,
            "notes": int(len(result.notes)),
            "chord_accuracy_vs_input": round(label_chord_accuracy(recognised, list(result.progression.labels)), 4),
            "note_density_per_bar": round(M.note_density(result.accompaniment), 2),
            "seconds": round(result.seconds, 3),
        }

    # -- tab 2: compare

    def compare(self, chords: str, segment=None, melody_file=None, tempo=90, rhythm="none", system_a="fgg",
                system_b="no_fgg", seed=0, model=None) -> tuple[str, str, object, object, object, pd.DataFrame]:
        """Two systems on the same 4-bar condition and seed: (WAV A, WAV B, roll A, roll B,
        changed-notes figure, metrics table)."""
        for name in (system_a, system_b):
            if name not in SYSTEMS:
                raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
        req = self.resolve(chords, segment, melody_file, SEGMENT_BARS, tempo, rhythm)
        seg = req.segment
        batch = SegmentBatch(
            melody=(req.melody if req.melody is not None else np.zeros((2, SEGMENT_STEPS, 64), bool))[None],
            accompaniment=None if seg is None else self.segments["accompaniment"][seg][None],
            chroma=req.progression.chroma[None], root=req.progression.root[None], bass=req.progression.bass[None],
            onset_counts=None if req.counts is None else req.counts[None])
        seeds = [int(clamp(seed, 0, 2**31 - 1, "seed"))]
        ctx = self.eval_context(model)
        rolls = {name: run_system(name, batch, seeds, ctx).rolls[0] for name in dict.fromkeys([system_a, system_b])}
        allowed = batch.allowed[0]
        out = Path(tempfile.mkdtemp(prefix="fgg-compare-"))
        wavs, figures, rows = [], [], []
        for side, name in (("A", system_a), ("B", system_b)):
            midi = rolls_to_midi({"melody": batch.melody[0], "accompaniment": rolls[name]}, req.tempo)
            wavs.append(str(write_wav(midi, out / f"{side}_{name}.wav")))
            figures.append(piano_roll_figure(rolls[name], batch.melody[0], req.progression.labels, allowed,
                                             title=f"{side}: {name}"))
        a, b = rolls[system_a], rolls[system_b]
        for metric, fn in (("out_of_key_rate", lambda r: M.out_of_key_rate(r, allowed)),
                           ("out_of_key_note_rate", lambda r: M.out_of_key_note_rate(r, allowed)),
                           ("notes", lambda r: len(roll_to_notes(r))),
                           ("note_density", M.note_density), ("polyphony", M.polyphony), ("pitch_range", M.pitch_range)):
            va, vb = float(fn(a)), float(fn(b))
            rows.append({"metric": metric, f"A ({system_a})": round(va, 4), f"B ({system_b})": round(vb, 4),
                         "B − A": round(vb - va, 4)})
        rows.append({"metric": "notes changed A→B", f"A ({system_a})": None, f"B ({system_b})": None,
                     "B − A": M.notes_changed(a, b)})
        diff = diff_figure(a, b, req.progression.labels, title=f"Notes changed from A ({system_a}) to B ({system_b})")
        return wavs[0], wavs[1], figures[0], figures[1], diff, pd.DataFrame(rows)


# -- tab 3: evaluate

EVAL_DIR = Path(__file__).resolve().parent.parent / "assets" / "eval"
STRENGTH_CURVE_FILE = EVAL_DIR / "strength_curve.csv"


def load_eval_results(folder: str | os.PathLike):
    """(summary, per_sample, out-of-key heat) DataFrames of a finished run, or Nones."""
    folder = Path(folder)
    if not (folder / "summary.csv").is_file():
        return None, None, None
    heat_file = folder / "out_of_key_pitch_classes.csv"
    return (pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "per_sample.csv"),
            pd.read_csv(heat_file) if heat_file.is_file() else None)


def load_strength_curve(path: str | os.PathLike = STRENGTH_CURVE_FILE) -> pd.DataFrame | None:
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


def run_eval_now(controller: Controller, n_segments, systems, seeds, progress=None, model=None):
    """A fresh (small) evaluation run in a temporary folder; returns (summary, per_sample
    CSV path, summary CSV path)."""
    from eval.run import run

    systems = [s for s in (systems or []) if s in SYSTEMS]
    if not systems:
        raise ValueError("choose at least one system to evaluate")
    n = int(clamp(n_segments, 1, 200, "segments"))
    k = int(clamp(seeds, 1, 5, "seeds"))
    out = Path(tempfile.mkdtemp(prefix="fgg-eval-"))
    name = model or controller.default_model
    generator = controller.generator(name)
    summary = run(VALID_SEGMENTS_FILE, systems, n, k, out, checkpoint=name, batch_size=8, progress=progress,
                  model=generator.model, precision=generator.precision)
    return summary, str(out / "per_sample.csv"), str(out / "summary.csv")
