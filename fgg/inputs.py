"""What a user gives, made ready for the sampler: rhythm patterns and onset counts, a melody
from MIDI (or a roll), a progression fitted to the requested length, and the pitch classes
allowed at each step (from the chords or a user scale).
"""

from __future__ import annotations

import os

import numpy as np
import pretty_midi
import torch

from fgg.chords import Progression, pitch_class, progression_from_labels
from fgg.guidance import chord_allowed_pitch_classes, scale_pitch_classes
from fgg.pianoroll import (
    BEATS_PER_BAR,
    N_PITCHES,
    NOTE_THRESHOLD,
    STEPS_PER_BAR,
    fold_pitches,
    midi_to_notes,
    notes_to_roll,
)

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
