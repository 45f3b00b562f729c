"""What the app's buttons do, as plain Python (the tabs in ``demo/tabs`` only wire these up).

A request (``demo.request.AppRequest``, the API's parameters by name) is resolved once:
``Controller.resolve`` does what only the app knows — a POP909 segment's chords, melody and
rhythm, the size of an uploaded melody, the Scale dropdown + tonic + custom notes as one
scale, the model's name as its ``Generator`` and mode — and hands the rest to
``fgg.inputs.resolve_spec`` under the public bounds (``demo.limits.PUBLIC_LIMITS``), which
returns the ``GenerationSpec`` the generator samples. A bad value raises ``InputError`` naming
the API parameter, the limit and the value; the UI runs the same check when a request joins
the queue, so bad input is refused at once and no stack trace ever reaches the page.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pretty_midi

from demo.audio import LiveAudio, render_audio, write_audio
from demo.comparison import compare_table, why_the_same
from demo.figures import diff_figure, piano_roll_figure
from demo.limits import MAX_CHORD_CHARS, MAX_CUSTOM_SCALE_CHARS, MAX_MIDI_BYTES, PUBLIC_LIMITS
from demo.request import (
    MELODY_RHYTHM_CHOICES,
    NO_SEGMENT,
    RHYTHM_CHOICES,
    SCALE_CHOICES,
    AppRequest,
    CompareRequest,
)
from demo.workspace import Workspace
from eval import metrics as M
from eval.baselines import EvalContext, SegmentBatch, run_system
from eval.chord_metrics import MIDI_TEMPO, label_chord_accuracy
from fgg import dynamics
from fgg.checks import InputError, choice, flag, number, shown, text
from fgg.chords import PITCH_NAMES, chord_name
from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.generate import GenerationResult, Generator, piece_midi
from fgg.inputs import GenerationSpec, load_melody, resolve_spec, rhythm_counts
from fgg.melody_rhythms import library as melody_rhythm_library
from fgg.melody_rhythms import pattern_text, roll_rhythm, suited_rhythm
from fgg.melody_shape import START
from fgg.model import count_parameters
from fgg.modes import ACCOMPANIMENT
from fgg.pianoroll import (
    BEATS_PER_BAR,
    SEGMENT_BARS,
    SEGMENT_STEPS,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    roll_to_notes,
    rolls_to_midi,
)

MODEL_BLURBS = {
    "paper": "best quality",
    "small": "fastest",
    "combined-paper": "best quality",
    "combined-small": "fastest",
}
# The longest melody a segment's is tiled to (``resolve_spec`` cuts it to the piece).
SEGMENT_TILES = -(-PUBLIC_LIMITS.bars[1] * STEPS_PER_BAR // SEGMENT_STEPS)


@dataclass(frozen=True)
class GenerateResult:
    """What /generate makes, by name."""

    audio: str | None  # MP3 path, for the player (None: the audio went to a listener as it was made)
    midi: str  # MIDI path
    figure: go.Figure  # the piano roll
    metrics: dict  # of this sample (JSON)
    wav: str  # WAV path, for download
    warnings: tuple[str, ...]  # what the visitor should know (a cut progression)


@dataclass(frozen=True)
class CompareResult:
    """What /compare makes, by name: side A and side B, what changed, and the metrics."""

    audio_a: str
    audio_b: str
    midi_a: str
    midi_b: str
    plot_a: go.Figure
    plot_b: go.Figure
    diff: go.Figure  # the notes changed from A to B
    table: pd.DataFrame  # one row per metric: A, B, B − A
    warnings: tuple[str, ...]


def check_midi_upload(path) -> str | None:
    """None without an upload; else the path, after the size checks (corrupt files are
    reported by ``resolve_spec``). Messages name the file as the visitor named it, never the
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


def scale_spec(scale, tonic, custom_scale) -> str | list[str] | None:
    """The Scale dropdown, Tonic and custom notes -> ``resolve_spec``'s ``scale``: None (from
    the chords), "D dorian", or note names."""
    scale = choice(scale or "from chords", SCALE_CHOICES, "scale")
    custom = text(custom_scale, "custom_scale", MAX_CUSTOM_SCALE_CHARS)
    if scale == "from chords":
        return None
    if scale == "custom":
        notes = [t for t in custom.replace(",", " ").split() if t]
        if not notes:
            raise InputError("custom_scale", "custom scale: list its notes, e.g. 'C D E G A'")
        return notes
    return f"{choice(tonic, PITCH_NAMES, 'tonic')} {scale}"


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
                + (", writes the melody too" if g.mode.writes_melody else ""),
                name,
            )
            for name, g in self.generators.items()
        ]

    def melody_writers(self) -> list[str]:
        """The served models that write the melody too."""
        return [name for name, g in self.generators.items() if g.mode.writes_melody]

    def model_name(self, model=None) -> str:
        """A served model's name, checked (None: the default)."""
        return choice(model or self.default_model, list(self.generators), "model")

    def generator(self, model=None) -> Generator:
        return self.generators[self.model_name(model)]

    # -- POP909 segments

    def segment_key(self, index: int) -> str:
        """The annotated key at the segment's first keyed step ("E♭ major"), or "key unknown"."""
        tonic, minor = self.segments["key_tonic"][index], self.segments["key_minor"][index]
        keyed = np.flatnonzero(tonic >= 0)
        if not len(keyed):
            return "key unknown"
        t = keyed[0]
        return f"{PITCH_NAMES[int(tonic[t])]} {'minor' if minor[t] else 'major'}"

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
            silent = sum(not self.has_melody(int(i)) for i in idx)
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

    def segment_index(self, index) -> int | None:
        """A segment's index, checked; None for no segment."""
        if index in (None, "", NO_SEGMENT):
            return None
        index = number(index, "segment", NO_SEGMENT, len(self.segments["song_id"]) - 1, integer=True)
        return None if index == NO_SEGMENT else int(index)

    def segment_fields(self, index) -> tuple[str, float, str]:
        """(chord text, tempo, melody description) of a validation segment, to fill the inputs."""
        i = self.segment_index(index)
        if i is None:
            raise InputError("segment", "choose a POP909 segment first")
        return (
            chords_text_from_labels(self.segments["chord_labels"][i]),
            round(float(self.segments["tempo"][i])),
            self.melody_description(i),
        )

    def melody_description(self, segment: int | None, upload: str | None = None, model: str | None = None) -> str:
        """Where the melody comes from, in a line; an uploaded file is read at once, so a file
        that is not a usable MIDI melody is refused here, beside the upload, not at Generate."""
        if model in self.generators and self.generators[model].mode.writes_melody:
            return f"Melody: written by the {model} model, with the accompaniment (from the chords alone)."
        if upload:
            try:
                load_melody(check_midi_upload(upload), SEGMENT_STEPS)
            except ValueError as err:
                return f"✗ {err}: remove it or upload another."
            return f"Melody: the uploaded file {shown(os.path.basename(upload))} (it replaces any segment's melody)."
        if segment is None:
            return "Melody: none — the accompaniment follows the chords alone."
        if not self.has_melody(segment):
            return f"Melody: none — {self.segment_label(segment)} has no melody."
        return f"Melody: from {self.segment_label(segment)}."

    # -- requests

    def resolve(self, request: AppRequest) -> GenerationSpec:
        """Check every input (``InputError`` names the first bad API parameter) and resolve the
        request. ``bars=None`` follows the progression (4–32 bars); empty chords with a segment
        take the segment's chords."""
        chords = text(request.chords, "chords", MAX_CHORD_CHARS)
        segment = self.segment_index(request.segment)
        if not chords.strip() and segment is not None:
            chords = chords_text_from_labels(self.segments["chord_labels"][segment])
        name = self.model_name(request.model)
        scale = scale_spec(request.scale, request.tonic, request.custom_scale)
        flag(request.humanize, "humanize")
        flag(request.pedal, "pedal")
        try:
            return resolve_spec(
                chords,
                melody=self._melody(request.melody_file, segment, name),
                rhythm=self._rhythm(request.rhythm, segment),
                bars=request.bars,
                cfg_scale=request.cfg_scale,
                fgg=request.fgg,
                strength=request.strength,
                force_rhythm=request.force_rhythm,
                melody_rhythm=self._melody_rhythm(request.melody_rhythm, segment),
                scale=scale,
                scale_mode=request.scale_mode or "with_chords",
                scale_table=request.scale_table or "ours",
                steps=request.steps,
                solver=request.solver,
                seed=request.seed,
                tempo=request.tempo,
                mode=self.generators[name].mode,
                limits=PUBLIC_LIMITS,
            )
        except InputError as err:  # named as the API calls it
            renamed = {"melody": "melody_file", "scale": "custom_scale" if request.scale == "custom" else "scale"}
            if err.parameter not in renamed:
                raise
            raise InputError(renamed[err.parameter], str(err)) from None

    def _melody(self, melody_file, segment: int | None, model: str):
        """The melody for ``resolve_spec``: an upload's path, a segment's roll, or None."""
        path = check_midi_upload(melody_file)
        if self.generators[model].mode.writes_melody:
            if path is not None:
                raise InputError(
                    "melody_file",
                    f"the {model} model writes its own melody: remove the melody file or choose an accompaniment model",
                )
            return None
        if path is not None or segment is None:
            return path
        return np.tile(self.segments["melody"][segment], (1, SEGMENT_TILES, 1))

    def _rhythm(self, rhythm, segment: int | None):
        """The rhythm for ``resolve_spec``: "none", a pattern's name or a segment's onset counts."""
        rhythm = choice(rhythm or "none", RHYTHM_CHOICES, "rhythm")
        if rhythm != "from segment":
            return rhythm
        if segment is None:
            raise InputError("rhythm", "rhythm 'from segment' needs a POP909 segment: pick one or choose a pattern")
        return self.segments["onset_counts"][segment]

    def _melody_rhythm(self, melody_rhythm, segment: int | None) -> str:
        """The melody rhythm for ``resolve_spec``: a choice, "from segment" read off the
        segment's POP909 melody as a pattern (``fgg.melody_rhythms.melody_symbols``)."""
        melody_rhythm = melody_rhythm or "auto"
        if not isinstance(melody_rhythm, str) or melody_rhythm not in MELODY_RHYTHM_CHOICES:
            raise InputError(
                "melody_rhythm",
                f"unknown melody_rhythm {shown(melody_rhythm)}; choose one of auto, free, from segment, off or a "
                "library rhythm's key (e.g. e-e-e-e-h; python -m fgg.melody_rhythms lists them)",
            )
        if melody_rhythm != "from segment":
            return melody_rhythm
        if segment is None:
            raise InputError(
                "melody_rhythm", "melody rhythm 'from segment' needs a POP909 segment: pick one or choose a rhythm"
            )
        symbols = roll_rhythm(self.segments["melody"][segment])
        if not (symbols == START).any():
            raise InputError("melody_rhythm", f"{self.segment_label(segment)} has no melody to take a rhythm from")
        return pattern_text(symbols)

    def melody_rhythm_text(self, melody_rhythm, rhythm, segment, model) -> str:
        """One line on the melody rhythm a request asks for, as the Generate tab shows it."""
        if not self.generator(model).mode.writes_melody:
            return "Melody rhythm: for the models that write the melody (" + ", ".join(self.melody_writers()) + ")."
        if melody_rhythm == "auto":
            try:
                counts = rhythm_counts(self._rhythm(rhythm, self.segment_index(segment)), SEGMENT_STEPS)
            except (InputError, ValueError):
                counts = None
            chosen, target = suited_rhythm(counts)
            over = "an accompaniment of any rhythm" if counts is None else "accompaniments as busy as this rhythm"
            return (
                f"Melody rhythm: **{chosen.name}** (`{chosen.key}`), each phrase ending with a breath; chosen "
                f"because POP909's melodies start {target:g} notes a bar over {over}."
            )
        lines = {
            "free": "the model's own, one note at a time, at least one note start in every bar.",
            "from segment": "the rhythm of the segment's POP909 melody, its pitches the model's.",
            "off": "no constraints: the model alone (a bar may stay without melody).",
        }
        if melody_rhythm in lines:
            return f"Melody rhythm: {lines[melody_rhythm]}"
        known = melody_rhythm_library().get(melody_rhythm)
        if known is None:
            return ""
        return f"Melody rhythm: **{known.name}** (`{known.pattern}`), {known.share:.1%} of POP909's training bars."

    # -- tab 1: generate

    def generate(self, request: AppRequest, progress=None, listen=None) -> GenerateResult:
        """The request's music: MP3 for the player, MIDI, piano roll, metrics, WAV for download.
        ``progress(done, total)`` counts the sampler's steps. ``listen(part)``, if given, gets
        the audio as it becomes final ((N, 2) float32 at ``SAMPLE_RATE``, ``LiveAudio``): a
        long piece's first part after its first 4-bar window. With a listener no MP3 is made
        (``audio`` is None: the listener has heard it all). ``metrics["timings_s"]`` says where
        the time went (``demo.bench`` prints it), ``metrics["first_audio_s"]`` when the first
        audio was ready (a long piece's time to first sound in the app, before the transfer)."""
        began = time.perf_counter()
        spec = self.resolve(request)
        laps = Laps()
        first_audio: list[float] = []

        def performed(music: GenerationResult) -> pretty_midi.PrettyMIDI:
            if request.pedal:
                dynamics.pedal_at_chord_changes(music.midi, music.progression.labels)
            if request.humanize:  # the demo's option; the listening test's clips are never humanized
                dynamics.humanize(music.midi, spec.seed)
            return music.midi

        def heard(part: np.ndarray) -> None:
            if not first_audio:
                first_audio.append(time.perf_counter() - began)
            if listen is not None:
                listen(part)

        with LiveAudio(heard) as live:

            def window_done(so_far: GenerationResult) -> None:
                with laps("in_windows"):
                    live.add(performed(so_far), audible_until(so_far))

            result = self.generator(request.model).sample(spec, progress=progress, on_window=window_done)
            audio = live.finish(performed(result))
        laps["sampling"] = result.seconds - laps.pop("in_windows", 0.0)
        laps |= live.seconds
        out = self.workspace.new("generate-")
        stem = file_stem(self.model_name(request.model), result.progression.labels, result.seed)
        with laps("midi"):
            midi_path = out / f"{stem}.mid"
            result.midi.write(str(midi_path))
        # The MP3 encoder runs in C without the GIL: overlap it with the rest.
        with ThreadPoolExecutor(1) as encoder:
            mp3_path = None if listen else encoder.submit(laps.timed("mp3", write_audio), audio, out / f"{stem}.mp3")
            with laps("wav"):
                wav_path = write_audio(audio, out / f"{stem}.wav")
            with laps("figure"):
                figure = piano_roll_figure(
                    result.accompaniment,
                    result.melody,
                    result.progression.labels,
                    result.allowed,
                    title=f"{result.n_bars} bars · seed {result.seed} · {guidance_title(spec.options)}",
                )
            with laps("metrics"):
                metrics = self.sample_metrics(result, out)
            with laps("mp3_wait"):
                mp3 = None if mp3_path is None else str(mp3_path.result())
        timings = {part: round(seconds, 4) for part, seconds in laps.items()}
        metrics |= {
            "render_seconds": round(laps["synthesis"] + laps["loudness"], 3),
            "first_audio_s": round(first_audio[0], 4),
            "timings_s": timings | {"total": round(time.perf_counter() - began, 4)},
        }
        return GenerateResult(
            audio=mp3,
            midi=str(midi_path),
            figure=figure,
            metrics=metrics,
            wav=str(wav_path),
            warnings=tuple(result.warnings),
        )

    def sample_metrics(self, result: GenerationResult, workdir: Path) -> dict:
        # smg_metrics (the paper's chord recogniser) is slow to import: only when a sample is scored.
        from smg_metrics import midi_to_chords_dp

        acc_path = workdir / "accompaniment_only.mid"
        rolls_to_midi({"accompaniment": result.accompaniment}, MIDI_TEMPO).write(str(acc_path))
        recognised = midi_to_chords_dp(str(acc_path)) if result.accompaniment[0].any() else []
        return (
            ({"warnings": list(result.warnings)} if result.warnings else {})
            | {
                "out_of_key_rate": round(M.out_of_key_rate(result.accompaniment, result.allowed), 4),
                "out_of_key_notes": result.out_of_key_notes,
                "bars": result.n_bars,
                "notes": int(len(result.notes)),
                "chord_accuracy_vs_input": round(label_chord_accuracy(recognised, list(result.progression.labels)), 4),
                "note_density_per_bar": round(M.note_density(result.accompaniment), 2),
                "seconds": round(result.seconds, 3),
            }
            | ({"melody_notes": int(len(roll_to_notes(result.melody)))} if result.melody_generated else {})
        )

    # -- tab 2: compare

    def compare_spec(self, request: CompareRequest) -> tuple[GenerationSpec, str, str]:
        """The request cut to 4 bars, and its two systems, checked."""
        systems = (
            choice(request.system_a, list(ACCOMPANIMENT.systems), "system_a"),
            choice(request.system_b, list(ACCOMPANIMENT.systems), "system_b"),
        )
        spec = self.resolve(replace(request, bars=SEGMENT_BARS))
        name = self.model_name(request.model)
        if self.generators[name].mode.writes_melody:
            raise InputError(
                "model",
                f"Compare runs the evaluation's accompaniment systems; the {name} model "
                "writes the melody too: choose an accompaniment model",
            )
        for parameter, system in zip(("system_a", "system_b"), systems, strict=True):
            if system == "ground_truth" and self.segment_index(request.segment) is None:
                raise InputError(
                    parameter,
                    f"{parameter}: ground_truth is a POP909 segment's human accompaniment; "
                    "pick a segment (typed chords have none)",
                )
        return spec, *systems

    def compare_rolls(
        self, spec: GenerationSpec, segment: int | None, generator: Generator, systems
    ) -> dict[str, np.ndarray]:
        """(2, T, 64) rolls of ``systems`` on a 4-bar spec. Sampled with the spec's own options
        and seed, so ``fgg``/``no_fgg`` are exactly what Generate makes with 4 bars and FGG
        on/off (tested)."""
        batch = SegmentBatch(
            melody=(spec.melody if spec.melody is not None else np.zeros((2, SEGMENT_STEPS, 64), bool))[None],
            accompaniment=None if segment is None else self.segments["accompaniment"][segment][None],
            chroma=spec.progression.chroma[None],
            root=spec.progression.root[None],
            bass=spec.progression.bass[None],
            onset_counts=None if spec.counts is None else spec.counts[None],
            null_melody=spec.melody is None,
        )
        batch.allowed = spec.allowed[None]  # a user scale replaces the chord-derived one
        ctx = EvalContext(generator.model, generator.schedule, replace(spec.options, precision=generator.precision))
        return {name: run_system(name, batch, [spec.seed], ctx).rolls[0] for name in dict.fromkeys(systems)}

    def compare(self, request: CompareRequest) -> CompareResult:
        """Two systems on the Generate tab's request, cut to its first 4 bars, same seed."""
        spec, system_a, system_b = self.compare_spec(request)
        segment = self.segment_index(request.segment)
        rolls = self.compare_rolls(spec, segment, self.generator(request.model), [system_a, system_b])
        melody = spec.melody if spec.melody is not None else np.zeros((2, SEGMENT_STEPS, 64), bool)
        out = self.workspace.new("compare-")
        audio, midis, figures = [], [], []
        for side, name in (("A", system_a), ("B", system_b)):
            midi = piece_midi(melody, rolls[name], spec.tempo)
            midis.append(str(out / f"{side}_{name}_seed{spec.seed}.mid"))
            midi.write(midis[-1])
            audio.append(str(write_audio(render_audio(midi), out / f"{side}_{name}_seed{spec.seed}.mp3")))
            figures.append(
                piano_roll_figure(rolls[name], melody, spec.progression.labels, spec.allowed, title=f"{side}: {name}")
            )
        a, b = rolls[system_a], rolls[system_b]
        return CompareResult(
            audio_a=audio[0],
            audio_b=audio[1],
            midi_a=midis[0],
            midi_b=midis[1],
            plot_a=figures[0],
            plot_b=figures[1],
            diff=diff_figure(
                a, b, spec.progression.labels, title=f"Notes changed from A ({system_a}) to B ({system_b})"
            ),
            table=compare_table(a, b, spec.allowed, system_a, system_b),
            warnings=tuple(spec.warnings) + tuple(why_the_same(spec, system_a, system_b, a, b)),
        )


def guidance_title(options) -> str:
    """What guided the sampling, in a title's words: strength 0 samples as the model alone."""
    if not options.fgg:
        return "unguided (FGG off)"
    if options.strength == 0:
        return "unguided (FGG strength 0)"
    return "FGG on" if options.strength == 1 else f"FGG at strength {options.strength:g}"


def file_stem(model: str, beat_labels, seed: int) -> str:
    """A generation's files named after what they hold, e.g. "fgg-paper-Am_F_C_G-seed0": the
    model, the chords bar by bar (the first 8 bars, a chord's repeats once), the seed."""
    bars = []
    for bar in range(0, min(len(beat_labels), 8 * BEATS_PER_BAR), BEATS_PER_BAR):
        in_bar = dict.fromkeys(beat_labels[bar : bar + BEATS_PER_BAR])
        bars.append("-".join(chord_name(label) for label in in_bar))
    chords = re.sub(r"[^A-Za-z0-9_-]", "", "_".join(bars).replace("#", "s"))[:60]
    more = "_etc" if len(beat_labels) > 8 * BEATS_PER_BAR else ""
    return f"fgg-{model}-{chords}{more}-seed{seed}"


def audible_until(so_far: GenerationResult) -> float:
    """Where the audio of a piece known so far can stop (s): at its end, less the largest
    humanize shift, by which a note of the next window may come earlier (``LiveAudio``)."""
    step = 60.0 / so_far.tempo / STEPS_PER_BEAT
    return so_far.accompaniment.shape[1] * step - (dynamics.HUMANIZE_TIMING_MS + 1) / 1000


class Laps(dict):
    """Seconds by part of a request, added up: ``with laps("figure"): …``."""

    @contextmanager
    def __call__(self, part: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self[part] = self.get(part, 0.0) + time.perf_counter() - began

    def timed(self, part: str, work):
        """``work``, timed as ``part`` wherever it runs (another thread)."""

        def run(*args):
            with self(part):
                return work(*args)

        return run
