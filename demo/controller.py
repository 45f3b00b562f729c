"""What the app's buttons do, as plain Python (the Blocks in ``demo/ui.py`` only wire these up).

Every entry point first resolves its inputs into a ``Request`` (``Controller.resolve``), which
checks each one against ``demo.limits`` and raises ``InputError`` naming the API parameter,
the limit and the value; the UI runs the same check when a request joins the queue, so bad
input is refused at once and no stack trace ever reaches the page.
"""

from __future__ import annotations

import inspect
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from demo.audio import render_audio, write_audio
from demo.figures import diff_figure, piano_roll_figure
from demo.limits import (
    MAX_CHORD_CHARS,
    MAX_CUSTOM_SCALE_CHARS,
    MAX_MIDI_BYTES,
    SEED_RANGE,
    InputError,
    Workspace,
    choice,
    number,
    shown,
    text,
)
from eval import metrics as M
from eval.baselines import SYSTEMS, EvalContext, SegmentBatch, run_system
from eval.chord_metrics import MIDI_TEMPO, label_chord_accuracy
from fgg import dynamics
from fgg.chords import PITCH_NAMES, Progression, parse_progression
from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.generate import GenerationResult, Generator, SamplingOptions, piece_midi
from fgg.guidance import SCALE_TABLES
from fgg.inputs import (
    RHYTHM_PATTERNS,
    SCALE_MODES,
    allowed_pitch_classes,
    cut_progression_warnings,
    fit_progression,
    load_melody,
    rhythm_counts,
)
from fgg.model import count_parameters
from fgg.pianoroll import (
    BEATS_PER_BAR,
    SEGMENT_BARS,
    SEGMENT_STEPS,
    STEPS_PER_BAR,
    roll_to_notes,
    rolls_to_midi,
)

NO_SEGMENT = -1
BAR_RANGE = (4, 32)
TEMPO_RANGE = (40, 220)
STEP_RANGE = (2, 50)
CFG_RANGE = (1.0, 12.0)
RHYTHM_CHOICES = ["none", "from segment"] + list(RHYTHM_PATTERNS)
SCALE_CHOICES = ["from chords", "major", "minor", "dorian", "mixolydian", "pentatonic", "blues", "custom"]
SYSTEM_HELP = {  # one line per evaluation system, for the UI
    "fgg": "the full method: FGG at every sampling step",
    "no_fgg": "the same model and noise, no guidance",
    "last_step_remove": "unguided, then out-of-key notes deleted at the end",
    "last_step_round": "unguided, then out-of-key notes moved to the nearest allowed pitch",
    "inpaint": "out-of-key pixels held empty at every step (inpainting)",
    "null_rhythm": "FGG without the rhythm condition",
    "rule_based": "chord tones on the rhythm, no model (the floor)",
    "ground_truth": "the human POP909 accompaniment (needs a segment)",
}
MODEL_BLURBS = {
    "paper": "best quality",
    "small": "fastest",
    "combined-paper": "best quality",
    "combined-small": "fastest",
}
EXAMPLES = {
    "Pop I–V–vi–IV": "C G | Am F",
    "Jazz ii–V–I": "Dm7 | G7 | Cmaj7 | Cmaj7",
    "Minor-key ballad": "Am | F | Dm | E7",
    "Dorian vamp": "Dm7 | G | Dm7 | G",
}
KEY_NAMES = PITCH_NAMES
CFG_HELP = {
    True: "how strongly the melody and rhythm steer the music (1 = the model ignores them)",
    False: "no effect with chords alone: chords are never dropped, so both of CFG's predictions are the "
    "same. Add a melody, a segment or a rhythm to use it.",
}


@dataclass
class Request:
    """A checked generation request: what the model is conditioned on and how it samples."""

    progression: Progression  # exactly ``bars`` bars
    melody: np.ndarray | None  # (2, T, 64) bool, None = no melody given (null melody condition)
    counts: np.ndarray | None  # (T,) onset counts, None = null rhythm
    scale: object  # None (from chords), "D dorian", or note names
    allowed: np.ndarray  # (T, 12) bool pitch classes allowed at each step
    tempo: float
    segment: int | None
    fgg: bool = True
    strength: float = 1.0
    cfg_scale: float = 7.5
    steps: int = 10
    seed: int = 0
    model: str = ""
    scale_table: str = "ours"
    scale_mode: str = "with_chords"
    warnings: tuple[str, ...] = ()
    humanize: bool = False
    pedal: bool = False

    @property
    def cfg_has_effect(self) -> bool:
        """CFG mixes the conditional and the null prediction; chords are never dropped, so with
        neither a melody nor a rhythm the two are the same and the CFG scale changes nothing."""
        return self.melody is not None or self.counts is not None


def check_midi_upload(path) -> str | None:
    """None without an upload; else the path, after the size checks (corrupt files are
    reported by ``load_melody``). Messages name the file as the visitor named it, never the
    server's path."""
    if path in (None, ""):
        return None
    path = getattr(path, "name", path)
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise InputError("melody_file", f"melody_file: no uploaded file {shown(os.path.basename(str(path)))}")
    size = os.path.getsize(path)
    name = shown(os.path.basename(path))
    if size == 0:
        raise InputError("melody_file", f"the melody file {name} is empty")
    if size > MAX_MIDI_BYTES:
        raise InputError("melody_file", f"the melody file {name} is {size / 1e6:.1f} MB; the limit is 1 MB")
    return str(path)


def chords_text_from_labels(labels) -> str:
    """Per-beat Harte labels -> progression text (one token per chord change inside a bar)."""
    bars = []
    for b in range(0, len(labels), BEATS_PER_BAR):
        beats = [str(x) for x in labels[b : b + BEATS_PER_BAR]]
        if len(set(beats)) == 1:
            bars.append(beats[0])
        elif beats[0] == beats[1] and beats[2] == beats[3]:
            bars.append(f"{beats[0]} {beats[2]}")
        else:
            bars.append(" ".join(beats))
    return " | ".join(bars)


def _flag(value, name: str) -> bool:
    if value not in (True, False):  # also 1/0, never "false" (truthy) or None
        raise InputError(name, f"{name} must be true or false (got {shown(value)})")
    return bool(value)


class Controller:
    """``generators``: the served models by name, the first being the default (the app
    loads each checkpoint once, here). Files made for a response go to ``workspace``."""

    def __init__(
        self,
        generators: dict[str, Generator],
        segments_file: str | os.PathLike = VALID_SEGMENTS_FILE,
        workspace: Workspace | None = None,
    ):
        if not generators:
            raise ValueError("the app needs at least one model")
        self.generators = dict(generators)
        self.default_model = next(iter(self.generators))
        self.segments = load_valid_segments(segments_file)
        self.workspace = workspace or Workspace()

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for the Model dropdown, e.g. "paper — 26.6 M, best quality"."""
        return [
            (
                f"{name} — {count_parameters(g.model) / 1e6:.1f} M"
                + (f", {MODEL_BLURBS[name]}" if name in MODEL_BLURBS else "")
                + (", writes the melody too" if g.mode == "melody+accompaniment" else ""),
                name,
            )
            for name, g in self.generators.items()
        ]

    def melody_writers(self) -> list[str]:
        """The served models of the melody+accompaniment mode."""
        return [name for name, g in self.generators.items() if g.mode == "melody+accompaniment"]

    def generator(self, model=None) -> Generator:
        return self.generators[choice(model or self.default_model, list(self.generators), "model")]

    # -- POP909 segments

    def segment_key(self, index: int) -> str:
        """The annotated key at the segment's first keyed step ("E♭ major"), or "key unknown"."""
        tonic, minor = self.segments["key_tonic"][index], self.segments["key_minor"][index]
        keyed = np.flatnonzero(tonic >= 0)
        if not len(keyed):
            return "key unknown"
        t = keyed[0]
        return f"{KEY_NAMES[int(tonic[t])]} {'minor' if minor[t] else 'major'}"

    def has_melody(self, index: int) -> bool:
        return bool(self.segments["melody"][index].any())

    def segment_label(self, index: int) -> str:
        """e.g. "song 012 · bars 5–8 · Eb major · no melody" (searchable in the picker)."""
        seg = self.segments
        bar = int(seg["bar"][index])
        return (
            f"song {int(seg['song_id'][index]):03d} · bars {bar + 1}–{bar + SEGMENT_BARS} · "
            f"{self.segment_key(index)}" + ("" if self.has_melody(index) else " · no melody")
        )

    def song_choices(self) -> list[tuple[str, int]]:
        """(label, song id) for every validation song: "song 012 · Eb major · 14 segments, 2 without melody"."""
        songs = self.segments["song_id"]
        out = []
        for song in np.unique(songs):
            idx = np.flatnonzero(songs == song)
            silent = sum(not self.has_melody(i) for i in idx)
            out.append(
                (
                    f"song {int(song):03d} · {self.segment_key(idx[0])} · {len(idx)} segments"
                    + (f", {silent} without melody" if silent else ""),
                    int(song),
                )
            )
        return out

    def segment_choices(self, song=None) -> list[tuple[str, int]]:
        """(label, index) of the segments of ``song`` (all segments without one)."""
        songs = self.segments["song_id"]
        idx = range(len(songs)) if song in (None, "") else np.flatnonzero(songs == int(song))
        return [(self.segment_label(int(i)), int(i)) for i in idx]

    def _segment(self, index) -> int | None:
        if index in (None, "", NO_SEGMENT):
            return None
        index = number(index, "segment", NO_SEGMENT, len(self.segments["song_id"]) - 1, integer=True)
        return None if index == NO_SEGMENT else index

    def segment_fields(self, index) -> tuple[str, float, str]:
        """(chord text, tempo, melody description) of a validation segment, to fill the inputs."""
        i = self._segment(index)
        if i is None:
            raise InputError("segment", "choose a POP909 segment first")
        return (
            chords_text_from_labels(self.segments["chord_labels"][i]),
            round(float(self.segments["tempo"][i])),
            self.melody_description(i),
        )

    def melody_description(self, segment: int | None, upload: str | None = None, model: str | None = None) -> str:
        if model in self.generators and self.generators[model].mode == "melody+accompaniment":
            return f"Melody: written by the {model} model, with the accompaniment (from the chords alone)."
        if upload:
            return f"Melody: the uploaded file {shown(os.path.basename(upload))} (it replaces any segment's melody)."
        if segment is None:
            return "Melody: none — the accompaniment follows the chords alone."
        if not self.has_melody(segment):
            return f"Melody: none — {self.segment_label(segment)} has no melody."
        return f"Melody: from {self.segment_label(segment)}."

    # -- requests

    def resolve(
        self,
        chords: str,
        segment=NO_SEGMENT,
        melody_file=None,
        bars=None,
        tempo=90,
        fgg=True,
        strength=1.0,
        cfg_scale=7.5,
        rhythm="none",
        scale="from chords",
        tonic="C",
        custom_scale=None,
        steps=10,
        seed=0,
        model=None,
        scale_table="ours",
        scale_mode="with_chords",
        humanize=False,
        pedal=False,
    ) -> Request:
        """Check every input (``InputError`` names the first bad one) and resolve the request.
        ``bars=None`` follows the progression (4–32 bars); empty chords with a segment take the
        segment's chords."""
        chords = text(chords, "chords", MAX_CHORD_CHARS)
        seg = self._segment(segment)
        if not chords.strip() and seg is not None:
            chords = chords_text_from_labels(self.segments["chord_labels"][seg])
        try:
            progression = parse_progression(chords)
        except ValueError as err:
            raise InputError("chords", str(err)) from None
        if bars in (None, ""):
            bars = min(max(progression.n_bars, BAR_RANGE[0]), BAR_RANGE[1])
        bars = number(bars, "bars", *BAR_RANGE, integer=True)
        warnings = tuple(cut_progression_warnings(progression, bars))
        tempo = number(tempo, "tempo", *TEMPO_RANGE, unit="BPM")
        fgg = _flag(fgg, "fgg")
        strength = number(strength, "strength", 0, 1)
        cfg_scale = number(cfg_scale, "cfg_scale", *CFG_RANGE)
        steps = number(steps, "steps", *STEP_RANGE, integer=True)
        seed = number(seed, "seed", *SEED_RANGE, integer=True)
        model = choice(model or self.default_model, list(self.generators), "model")
        scale_table = choice(scale_table or "ours", SCALE_TABLES, "scale_table")
        scale_mode = choice(scale_mode or "with_chords", SCALE_MODES, "scale_mode")
        rhythm = choice(rhythm or "none", RHYTHM_CHOICES, "rhythm")
        scale = choice(scale or "from chords", SCALE_CHOICES, "scale")
        custom_scale = text(custom_scale, "custom_scale", MAX_CUSTOM_SCALE_CHARS)
        n_steps = bars * STEPS_PER_BAR
        melody = None
        path = check_midi_upload(melody_file)
        writes_melody = self.generators[model].mode == "melody+accompaniment"
        if writes_melody and path is not None:
            raise InputError(
                "melody_file",
                f"the {model} model writes its own melody: remove the melody file or choose an accompaniment model",
            )
        try:
            if path is not None:
                melody = load_melody(path, n_steps)
            elif seg is not None and not writes_melody:
                tiled = np.tile(self.segments["melody"][seg], (1, -(-n_steps // SEGMENT_STEPS), 1))
                melody = load_melody(tiled, n_steps)
        except ValueError as err:
            raise InputError("melody_file", str(err)) from None
        if rhythm == "from segment":
            if seg is None:
                raise InputError("rhythm", "rhythm 'from segment' needs a POP909 segment: pick one or choose a pattern")
            counts = rhythm_counts(self.segments["onset_counts"][seg], n_steps)
        else:
            counts = rhythm_counts(None if rhythm == "none" else rhythm, n_steps)
        if scale == "from chords":
            scale_spec = None
        elif scale == "custom":
            scale_spec = [t for t in custom_scale.replace(",", " ").split() if t]
            if not scale_spec:
                raise InputError("custom_scale", "custom scale: list its notes, e.g. 'C D E G A'")
        else:
            scale_spec = f"{choice(tonic, PITCH_NAMES, 'tonic')} {scale}"
        progression = fit_progression(progression, bars)
        try:
            allowed = allowed_pitch_classes(progression, scale_spec, scale_table, scale_mode)
        except ValueError as err:
            raise InputError("custom_scale" if scale == "custom" else "scale", str(err)) from None
        return Request(
            progression,
            melody,
            counts,
            scale_spec,
            allowed,
            tempo,
            seg,
            fgg,
            strength,
            cfg_scale,
            steps,
            seed,
            model,
            scale_table,
            scale_mode,
            warnings,
            _flag(humanize, "humanize"),
            _flag(pedal, "pedal"),
        )

    # -- tab 1: generate

    def generate(self, *args, progress=None, **kwargs) -> tuple[str, str, object, dict, str]:
        """``resolve``'s inputs -> (MP3 path for the player, MIDI path, piano-roll figure,
        metrics, WAV path for download)."""
        req = self.resolve(*args, **kwargs)
        result = self.generator(req.model).generate(
            req.progression,
            melody=req.melody,
            rhythm=req.counts,
            bars=req.progression.n_bars,
            cfg_scale=req.cfg_scale,
            fgg=req.fgg,
            strength=req.strength,
            scale=req.scale,
            steps=req.steps,
            seed=req.seed,
            tempo=req.tempo,
            progress=progress,
            scale_table=req.scale_table,
            scale_mode=req.scale_mode,
        )
        result.warnings.extend(req.warnings)
        if req.pedal:
            dynamics.pedal_at_chord_changes(result.midi, result.progression.labels)
        if req.humanize:  # the demo's option; the listening test's clips are never humanized
            dynamics.humanize(result.midi, req.seed)
        out = self.workspace.new("generate-")
        midi_path = out / f"fgg_seed{result.seed}.mid"
        result.midi.write(str(midi_path))
        began = time.perf_counter()
        audio = render_audio(result.midi)
        render_seconds = time.perf_counter() - began
        # The MP3 encoder (~0.3 s for 4 bars) runs in C without the GIL: overlap it with the
        # figure and the metrics instead of adding it to the wait.
        with ThreadPoolExecutor(1) as encoder:
            mp3_path = encoder.submit(write_audio, audio, out / f"fgg_seed{result.seed}.mp3")
            wav_path = write_audio(audio, out / f"fgg_seed{result.seed}.wav")
            figure = piano_roll_figure(
                result.accompaniment,
                result.melody,
                result.progression.labels,
                result.allowed,
                title=f"{result.n_bars} bars · seed {result.seed} · FGG {'on' if req.fgg else 'off'}",
            )
            metrics = self.sample_metrics(result, out) | {"render_seconds": round(render_seconds, 3)}
            return str(mp3_path.result()), str(midi_path), figure, metrics, str(wav_path)

    def sample_metrics(self, result: GenerationResult, workdir: Path) -> dict:
        from smg_metrics import midi_to_chords_dp

        acc_path = workdir / "accompaniment_only.mid"
        rolls_to_midi({"accompaniment": result.accompaniment}, MIDI_TEMPO).write(str(acc_path))
        recognised = midi_to_chords_dp(str(acc_path)) if result.accompaniment[0].any() else []
        return (
            ({"warnings": list(result.warnings)} if result.warnings else {})
            | {
                "out_of_key_rate": round(M.out_of_key_rate(result.accompaniment, result.allowed), 4),
                "out_of_key_notes": result.out_of_key_notes,
                "notes": int(len(result.notes)),
                "chord_accuracy_vs_input": round(label_chord_accuracy(recognised, list(result.progression.labels)), 4),
                "note_density_per_bar": round(M.note_density(result.accompaniment), 2),
                "seconds": round(result.seconds, 3),
            }
            | ({"melody_notes": int(len(roll_to_notes(result.melody)))} if result.melody_generated else {})
        )

    # -- tab 2: compare

    def compare_rolls(self, req: Request, systems) -> dict[str, np.ndarray]:
        """(2, T, 64) rolls of ``systems`` on a 4-bar request. Sampled with the request's own
        settings and seed, so ``fgg``/``no_fgg`` are exactly what Generate makes with 4 bars
        and FGG on/off (tested)."""
        seg = req.segment
        gen = self.generator(req.model)
        batch = SegmentBatch(
            melody=(req.melody if req.melody is not None else np.zeros((2, SEGMENT_STEPS, 64), bool))[None],
            accompaniment=None if seg is None else self.segments["accompaniment"][seg][None],
            chroma=req.progression.chroma[None],
            root=req.progression.root[None],
            bass=req.progression.bass[None],
            onset_counts=None if req.counts is None else req.counts[None],
            scale_table=req.scale_table,
            null_melody=req.melody is None,
        )
        batch.allowed = req.allowed[None]  # a user scale replaces the chord-derived one
        options = SamplingOptions(
            cfg_scale=req.cfg_scale, strength=req.strength, steps=req.steps, precision=gen.precision
        )
        ctx = EvalContext(gen.model, gen.schedule, options)
        return {name: run_system(name, batch, [req.seed], ctx).rolls[0] for name in dict.fromkeys(systems)}

    def compare_request(self, *args, system_a="fgg", system_b="no_fgg", **kwargs) -> tuple[Request, str, str]:
        """``resolve``'s inputs cut to 4 bars, and the two systems, checked."""
        systems = choice(system_a, list(SYSTEMS), "system_a"), choice(system_b, list(SYSTEMS), "system_b")
        req = self.resolve(
            **(dict(zip(GENERATE_PARAMETERS[: len(args)], args, strict=True)) | kwargs | {"bars": SEGMENT_BARS})
        )
        if req.model in self.melody_writers():
            raise InputError(
                "model",
                f"Compare runs the evaluation's accompaniment systems; the {req.model} model "
                "writes the melody too: choose an accompaniment model",
            )
        for parameter, name in zip(("system_a", "system_b"), systems, strict=True):
            if name == "ground_truth" and req.segment is None:
                raise InputError(
                    parameter,
                    f"{parameter}: ground_truth is a POP909 segment's human accompaniment; "
                    "pick a segment (typed chords have none)",
                )
        return req, *systems

    def compare(self, *args, **kwargs):
        """Two systems on the Generate tab's request, cut to its first 4 bars, same seed:
        (MP3 A, MP3 B, MIDI A, MIDI B, roll A, roll B, changed-notes figure, metrics table, warnings)."""
        req, system_a, system_b = self.compare_request(*args, **kwargs)
        rolls = self.compare_rolls(req, [system_a, system_b])
        melody = req.melody if req.melody is not None else np.zeros((2, SEGMENT_STEPS, 64), bool)
        out = self.workspace.new("compare-")
        wavs, midis, figures = [], [], []
        for side, name in (("A", system_a), ("B", system_b)):
            midi = piece_midi(melody, rolls[name], req.tempo)
            midis.append(str(out / f"{side}_{name}_seed{req.seed}.mid"))
            midi.write(midis[-1])
            wavs.append(str(write_audio(render_audio(midi), out / f"{side}_{name}_seed{req.seed}.mp3")))
            figures.append(
                piano_roll_figure(rolls[name], melody, req.progression.labels, req.allowed, title=f"{side}: {name}")
            )
        a, b = rolls[system_a], rolls[system_b]
        rows = []
        for metric, fn in (
            ("out_of_key_rate", lambda r: M.out_of_key_rate(r, req.allowed)),
            ("out_of_key_note_rate", lambda r: M.out_of_key_note_rate(r, req.allowed)),
            ("notes", lambda r: len(roll_to_notes(r))),
            ("note_density", M.note_density),
            ("polyphony", M.polyphony),
            ("pitch_range", M.pitch_range),
        ):
            va, vb = float(fn(a)), float(fn(b))
            rows.append(
                {
                    "metric": metric,
                    f"A ({system_a})": round(va, 4),
                    f"B ({system_b})": round(vb, 4),
                    "B − A": round(vb - va, 4),
                }
            )
        rows.append(
            {
                "metric": "notes changed A→B",
                f"A ({system_a})": None,
                f"B ({system_b})": None,
                "B − A": M.notes_changed(a, b),
            }
        )
        diff = diff_figure(a, b, req.progression.labels, title=f"Notes changed from A ({system_a}) to B ({system_b})")
        return (
            wavs[0],
            wavs[1],
            midis[0],
            midis[1],
            figures[0],
            figures[1],
            diff,
            pd.DataFrame(rows),
            list(req.warnings),
        )


# The /generate API's parameters, in order: ``resolve``'s (the /compare API's are these +
# system_a, system_b).
GENERATE_PARAMETERS = tuple(inspect.signature(Controller.resolve).parameters)[1:]
