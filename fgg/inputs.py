"""What a user gives, made ready for the sampler, once: ``resolve_spec`` checks every input
(``fgg.checks.InputError`` names the bad one) and returns a ``GenerationSpec`` — the progression
fitted to the requested length, the melody roll, the onset counts per step, the pitch classes
allowed at each step (from the chords or a user scale) and FGG's pixel mask, the sampling
options — which ``fgg.generate.Generator.sample`` consumes without resolving anything again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pretty_midi
import torch

from fgg.checks import InputError, choice, flag, number, text
from fgg.chords import Progression, parse_progression, pitch_class, progression_from_labels
from fgg.diffusion import NOISES, SOLVERS
from fgg.guidance import SCALE_TABLES, chord_allowed_pitch_classes, scale_pitch_classes
from fgg.melody_rhythms import auto_rhythm, parse_key, parse_pattern
from fgg.melody_rhythms import library as melody_rhythm_library
from fgg.melody_shape import DEFAULT_REGISTER, MelodyShape
from fgg.modes import ACCOMPANIMENT, Mode, get_mode
from fgg.pianoroll import (
    BEATS_PER_BAR,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    N_PITCHES,
    NOTE_THRESHOLD,
    SEGMENT_BARS,
    STEPS_PER_BAR,
    fold_pitches,
    midi_to_notes,
    notes_to_roll,
)
from fgg.precision import PRECISIONS
from fgg.sampling import SamplingOptions, fgg_pixel_mask

# Onset counts per 16th step of one 4/4 bar (how many accompaniment notes start there).
RHYTHM_PATTERNS: dict[str, tuple[int, ...]] = {
    "block_quarters": (4, 0, 0, 0) * 4,
    "half_notes": (4, 0, 0, 0, 0, 0, 0, 0) * 2,
    "eighth_arpeggio": (2, 0, 1, 0, 1, 0, 1, 0) * 2,
    "sixteenth_arpeggio": (2, 1, 1, 1) * 4,
    "syncopated_pop": (3, 0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2, 0, 1, 0),
    "ballad": (2, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0),
}


def rhythm_counts(rhythm, n_steps: int) -> np.ndarray | None:
    """None / "none" -> None (null rhythm); a pattern name -> its counts tiled over the piece;
    an array of per-step onset counts (e.g. a POP909 segment's) -> tiled/cut to ``n_steps``."""
    if rhythm is None or (isinstance(rhythm, str) and rhythm.strip().lower() in ("", "none")):
        return None
    if isinstance(rhythm, str):
        key = rhythm.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in RHYTHM_PATTERNS:
            raise ValueError(f"unknown rhythm pattern {rhythm!r}; choose one of {', '.join(RHYTHM_PATTERNS)}")
        pattern = np.array(RHYTHM_PATTERNS[key])
    else:
        pattern = np.asarray(rhythm).astype(np.int64).ravel()
        if len(pattern) == 0 or len(pattern) % STEPS_PER_BAR or pattern.min() < 0 or pattern.max() > N_PITCHES:
            raise ValueError(
                f"rhythm must be whole bars of per-step onset counts in 0..{N_PITCHES}, got {len(pattern)} values"
            )
    return np.resize(pattern, n_steps)


def load_melody(melody, n_steps: int) -> np.ndarray:
    """Melody as a (2, n_steps, 64) bool roll from a roll, notes (N, 3), a ``PrettyMIDI`` or a
    MIDI path. From MIDI: the instrument named like "melody", else the first non-drum one,
    quantized to 16ths at the file's first tempo; out-of-range pitches are octave-folded."""
    if isinstance(melody, np.ndarray) and melody.ndim == 3:
        roll = np.zeros((2, n_steps, N_PITCHES), dtype=bool)
        length = min(n_steps, melody.shape[1])
        roll[:, :length] = melody[:, :length] > NOTE_THRESHOLD
        return roll
    if isinstance(melody, (str, os.PathLike)):
        try:
            melody = pretty_midi.PrettyMIDI(str(melody))
        except Exception:  # mido/pretty_midi raise many types on corrupt files; their text is internals
            raise ValueError(
                f"cannot read melody MIDI {os.path.basename(melody)!r}: it is not a valid standard MIDI file"
            ) from None
    if isinstance(melody, pretty_midi.PrettyMIDI):
        insts = [i for i in melody.instruments if not i.is_drum and i.notes]
        if not insts:
            raise ValueError("the melody MIDI has no notes")
        named = [i for i in insts if "melody" in i.name.lower()]
        notes = midi_to_notes(melody, tracks=[(named or insts)[0].name])
    else:
        notes = np.asarray(melody, dtype=np.int64).reshape(-1, 3)
    notes = notes.copy()
    notes[:, 2], _ = fold_pitches(notes[:, 2])
    return notes_to_roll(notes, n_steps)


def cut_progression_warnings(progression: Progression, bars: int) -> list[str]:
    """What to tell the caller when ``bars`` is shorter than the progression (it gets cut)."""
    if bars >= progression.n_bars:
        return []
    return [
        f"the progression has {progression.n_bars} bars but bars = {bars}: only its first {bars} bars were generated"
    ]


def fit_progression(progression: Progression, bars: int) -> Progression:
    """Repeat (or cut) a progression to exactly ``bars`` bars."""
    beats = bars * BEATS_PER_BAR
    return progression_from_labels([progression.labels[i % len(progression.labels)] for i in range(beats)])


SCALE_MODES = ("with_chords", "strict")


def allowed_pitch_classes(
    progression: Progression, scale=None, scale_table: str = "ours", scale_mode: str = "with_chords"
) -> np.ndarray:
    """(T, 12) bool: from the chords (``scale=None``, through ``scale_table`` "ours" or
    "paper") or a user scale, given as a name ("dorian", tonic = root of the first chord),
    "TONIC NAME" ("D dorian"), or pitch classes. A user scale constrains the notes *around*
    the chords, so by default (``scale_mode="with_chords"``) each step also allows its chord's
    own tones — F♯ dorian over a D chord keeps D; ``scale_mode="strict"`` is the scale alone."""
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"unknown scale mode {scale_mode!r}; choose one of {', '.join(SCALE_MODES)}")
    if scale is None or (isinstance(scale, str) and scale.strip().lower() in ("", "chords", "from chords")):
        allowed = chord_allowed_pitch_classes(
            torch.from_numpy(progression.root.astype(np.int64)), torch.from_numpy(progression.chroma), scale_table
        )
        return allowed.numpy()
    user = np.broadcast_to(user_scale_pitch_classes(progression, scale), (progression.n_steps, 12))
    return (user | progression.chroma.astype(bool)) if scale_mode == "with_chords" else user.copy()


def user_scale_pitch_classes(progression: Progression, scale) -> np.ndarray:
    """(12,) bool pitch classes of a user scale (see ``allowed_pitch_classes``)."""
    if isinstance(scale, str):
        parts = scale.split()
        if len(parts) == 2:
            tonic_name, name = parts
            try:
                tonic = pitch_class(tonic_name)
            except ValueError:
                raise ValueError(f"unknown scale tonic {tonic_name!r} in {scale!r}") from None
        else:
            name = scale
            roots = progression.root[progression.root >= 0]
            tonic = int(roots[0]) if len(roots) else 0
        return scale_pitch_classes(name, tonic).numpy()  # resolves aliases, names an unknown scale
    return scale_pitch_classes(scale).numpy()


@dataclass(frozen=True)
class InputLimits:
    """Bounds on what a caller may ask for, (lo, hi) inclusive; a value outside is refused,
    never clamped. The library's are wide; a public app passes tighter ones."""

    bars: tuple[int, int] = (SEGMENT_BARS, 64)
    tempo: tuple[float, float] = (1.0, 1000.0)  # BPM
    steps: tuple[int, int] = (1, 1000)  # DDIM steps, at most the schedule's length
    cfg_scale: tuple[float, float] = (1.0, 20.0)
    seed: tuple[int, int] = (0, 2**64 - 1)  # what torch.Generator.manual_seed takes
    chord_chars: int = 100_000  # progression text, checked before parsing
    scale_chars: int = 1_000  # a user scale's text


LIBRARY_LIMITS = InputLimits()


@dataclass(frozen=True)
class GenerationSpec:
    """A resolved generation request: everything the sampler needs, checked and laid out."""

    mode: Mode
    progression: Progression  # exactly ``bars`` bars
    melody: np.ndarray | None  # (2, T, 64) bool; None: no melody (the null condition), or the mode writes it
    counts: np.ndarray | None  # (T,) accompaniment onsets per step to enforce; None: the null rhythm
    allowed: np.ndarray  # (T, 12) bool pitch classes allowed at each step
    guide: np.ndarray  # (T, 64) bool pixels FGG keeps open at ``options.strength`` (fgg.sampling.fgg_pixel_mask)
    options: SamplingOptions
    seed: int
    tempo: float
    overlap_bars: int = 1  # of each 4-bar window with the music before it (pieces over 4 bars)
    precision: str | None = None  # "auto" | "fp32" | "bf16"; None: the generator's own
    warnings: tuple[str, ...] = ()  # what the caller should know (a cut progression)
    melody_shape: MelodyShape | None = None  # a generated melody's register, monophony, rhythm (with FGG)

    @property
    def n_steps(self) -> int:
        return self.progression.n_steps

    @property
    def bars(self) -> int:
        return self.progression.n_bars

    @property
    def cfg_has_effect(self) -> bool:
        """CFG mixes the conditional and the null prediction; chords are never dropped, so with
        neither a melody nor a rhythm the two are the same and the CFG scale changes nothing."""
        return self.melody is not None or self.counts is not None


def resolve_spec(
    chords,
    *,
    melody=None,
    rhythm=None,
    bars=None,
    cfg_scale=7.5,
    fgg=True,
    strength=1.0,
    scale=None,
    scale_mode="with_chords",
    scale_table="ours",
    steps=10,
    seed=0,
    tempo=90.0,
    cfg_rescale=0.7,
    eta=0.0,
    noise="ddim",
    solver="ddim",
    force_rhythm=True,
    overlap_bars=1,
    precision=None,
    melody_rhythm="auto",
    melody_register=None,
    mode: str | Mode = ACCOMPANIMENT.name,
    limits: InputLimits = LIBRARY_LIMITS,
) -> GenerationSpec:
    """Check and resolve one generation request; ``InputError`` names the first bad input.

    - ``chords``: progression text (bars separated by "|", e.g. "C G | Am F") or a ``Progression``.
    - ``melody``: a (2, T, 64) roll, notes (N, 3), a ``PrettyMIDI`` or a MIDI path (``load_melody``);
      None = no melody. Refused by a ``mode`` that writes the melody itself.
    - ``rhythm``: None / "none" (the model decides), a ``RHYTHM_PATTERNS`` name, or per-step onset
      counts (whole bars), tiled over the piece; with FGG the counts are enforced exactly
      (``force_rhythm``).
    - ``bars``: the length; None follows the progression (at least 4 bars; a longer one than
      ``limits.bars`` allows is cut, with a warning). A progression is repeated to fill ``bars``.
    - ``fgg``, ``strength`` (0–1, the share of out-of-key pitch classes forbidden, harshest
      first), ``cfg_scale``/``cfg_rescale`` (classifier-free guidance), ``steps``/``eta`` (DDIM),
      ``noise`` ("ddim", or "one_step": the authors' per-step noise, η its temperature;
      ``fgg.diffusion.step_noise``), ``solver`` ("ddim", the paper's, or "dpmpp_2m",
      ``fgg.diffusion.SOLVERS``; deterministic: ``eta`` 0); ``force_rhythm`` (with FGG and a rhythm: the onset counts
      enforced exactly, else only conditioned on).
    - ``scale``: None (allowed notes from each chord through ``scale_table``, "ours" or "paper"),
      a scale name ("dorian", tonic = the first chord's root), "TONIC NAME" ("D dorian") or
      note names; ``scale_mode`` "with_chords" also allows each chord's tones, "strict" not.
    - ``melody_rhythm`` (a mode that writes the melody): "auto" (the default: a library rhythm
      suited to ``rhythm``, ``fgg.melody_rhythms.suited_rhythm``; nothing for a mode that does
      not write the melody), None / "off" (no melody constraints), "free", a
      ``fgg.melody_rhythms`` key or a pattern (``resolve_melody_shape``), tiled over the piece;
      ``melody_register``: (low, high) MIDI, default ``DEFAULT_REGISTER``.
    - ``seed``: decides the starting noise; ``tempo`` in BPM; ``overlap_bars`` between 4-bar
      windows; ``precision`` of the network (None: the generator's); ``mode``: a name in
      ``fgg.modes.MODES``; ``limits``: the bounds (``LIBRARY_LIMITS``, or an app's).
    """
    mode = _resolve_mode(mode)
    progression = _parse_chords(chords, limits)
    bars, warnings = _resolve_bars(bars, progression, limits)
    progression = fit_progression(progression, bars)
    n_steps = bars * STEPS_PER_BAR
    melody_roll = _resolve_melody(melody, mode, n_steps)
    try:
        counts = rhythm_counts(rhythm, n_steps)
    except ValueError as err:
        raise InputError("rhythm", str(err)) from None
    allowed = _resolve_allowed(progression, scale, scale_table, scale_mode, limits)
    options = SamplingOptions(
        cfg_scale=number(cfg_scale, "cfg_scale", *limits.cfg_scale),
        cfg_rescale=number(cfg_rescale, "cfg_rescale", 0, 1),
        fgg=flag(fgg, "fgg"),
        strength=number(strength, "strength", 0, 1),
        force_rhythm=flag(force_rhythm, "force_rhythm"),
        steps=int(number(steps, "steps", *limits.steps, integer=True)),
        eta=number(eta, "eta", 0, 1),
        noise=choice(noise, NOISES, "noise"),
        solver=choice(solver, list(SOLVERS), "solver"),
    )
    if options.eta and not SOLVERS[options.solver].takes_noise:
        raise InputError("eta", f"the {options.solver} solver is deterministic: eta must be 0, got {options.eta}")
    try:
        SOLVERS[options.solver].timesteps(options.steps)
    except ValueError as err:
        raise InputError("steps", f"{options.solver}: {err}") from None
    guide = fgg_pixel_mask(allowed[None], progression.chroma[None], progression.root[None], options.strength)
    return GenerationSpec(
        mode=mode,
        progression=progression,
        melody=melody_roll,
        counts=counts,
        allowed=allowed,
        guide=guide[0].numpy(),  # (T, P)
        options=options,
        seed=int(number(seed, "seed", *limits.seed, integer=True)),
        tempo=float(number(tempo, "tempo", *limits.tempo, unit="BPM")),
        overlap_bars=int(number(overlap_bars, "overlap_bars", 1, SEGMENT_BARS - 1, integer=True)),
        precision=None if precision is None else choice(precision, PRECISIONS, "precision"),
        warnings=tuple(warnings),
        melody_shape=resolve_melody_shape(melody_rhythm, melody_register, mode, progression.chroma, counts),
    )


def resolve_melody_shape(
    rhythm, register, mode: Mode, chroma: np.ndarray, counts: np.ndarray | None = None
) -> MelodyShape | None:
    """The ``MelodyShape`` a request asks for: ``rhythm`` None / "off" (none: the register is
    then refused), "auto" (``suited_rhythm`` of the accompaniment's ``counts``, breathing at
    the end of each phrase; none for a mode that does not write the melody), "free" (the
    model's rhythm), a rhythm's key (``fgg.melody_rhythms``: the library's, or any other whole
    bars) or a pattern of x - ., tiled to the piece's steps; ``register`` (low, high) MIDI.
    Notes starting on beats 1 and 3 take a tone of the chord (``chroma`` (T, 12))."""
    n_steps = len(chroma)
    if isinstance(rhythm, str) and rhythm.strip().lower() == "auto" and not mode.writes_melody and register is None:
        return None
    if rhythm is None or (isinstance(rhythm, str) and rhythm.strip().lower() in ("", "none", "off")):
        if register is not None:
            raise InputError("melody_register", "a melody register needs a melody rhythm (free, or a rhythm)")
        return None
    if not mode.writes_melody:
        raise InputError(
            "melody_rhythm", f"the {mode.name} mode does not write the melody: no melody rhythm to give (auto or off)"
        )
    low, high = DEFAULT_REGISTER if register is None else register
    low = int(number(low, "melody_register", LOWEST_PITCH, HIGHEST_PITCH, integer=True))
    high = int(number(high, "melody_register", low + 11, HIGHEST_PITCH, integer=True))
    rhythm = text(rhythm, "melody_rhythm", 64 * STEPS_PER_BAR).strip()
    tones = np.asarray(chroma) > 0  # (T, 12)
    if rhythm.lower() == "free":
        return MelodyShape(low, high, chord_tones=tones)
    if rhythm.lower() == "auto":
        return MelodyShape(low, high, auto_rhythm(counts, n_steps), chord_tones=tones)
    known = melody_rhythm_library()
    try:
        symbols = known[rhythm].symbols if rhythm in known else read_pattern(rhythm)
    except ValueError as err:
        examples = ", ".join(list(known)[:4])
        raise InputError(
            "melody_rhythm", f"{err}; or free, or a key like {examples} (python -m fgg.melody_rhythms)"
        ) from None
    return MelodyShape(low, high, np.resize(symbols, n_steps), chord_tones=tones)


def read_pattern(rhythm: str) -> np.ndarray:
    """A pattern of x - . if it is one, else a rhythm's key (``fgg.melody_rhythms.parse_key``)."""
    return parse_pattern(rhythm) if set(rhythm) <= set("x-.") else parse_key(rhythm)


def _resolve_mode(mode) -> Mode:
    try:
        return get_mode(mode)
    except ValueError as err:
        raise InputError("mode", str(err)) from None


def _parse_chords(chords, limits: InputLimits) -> Progression:
    if isinstance(chords, Progression):
        return chords
    try:
        return parse_progression(text(chords, "chords", limits.chord_chars))
    except InputError:
        raise
    except ValueError as err:
        raise InputError("chords", str(err)) from None


def _resolve_bars(bars, progression: Progression, limits: InputLimits) -> tuple[int, list[str]]:
    """The piece's length in bars, and the warning when it cuts the progression short."""
    if bars is None or bars == "":
        bars = min(max(progression.n_bars, limits.bars[0]), limits.bars[1])
    bars = int(number(bars, "bars", *limits.bars, integer=True))
    return bars, cut_progression_warnings(progression, bars)


def _resolve_melody(melody, mode: Mode, n_steps: int) -> np.ndarray | None:
    if melody is None:
        return None
    if mode.writes_melody:
        raise InputError(
            "melody",
            f"this is a {mode.name} model: it writes the melody itself; give chords (and optionally a rhythm) only",
        )
    try:
        return load_melody(melody, n_steps)
    except ValueError as err:
        raise InputError("melody", str(err)) from None


def _resolve_allowed(progression: Progression, scale, scale_table, scale_mode, limits: InputLimits) -> np.ndarray:
    """(T, 12) allowed pitch classes (``allowed_pitch_classes``), the scale's errors named."""
    scale_table = choice(scale_table, SCALE_TABLES, "scale_table")
    scale_mode = choice(scale_mode, SCALE_MODES, "scale_mode")
    if isinstance(scale, str):
        text(scale, "scale", limits.scale_chars)
    elif scale is not None and len(scale) > limits.scale_chars:
        raise InputError("scale", f"a scale of {len(scale):,} notes; the limit is {limits.scale_chars:,}")
    try:
        return allowed_pitch_classes(progression, scale, scale_table, scale_mode)
    except ValueError as err:
        raise InputError("scale", str(err)) from None
