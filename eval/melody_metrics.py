"""Melody statistics and the style check, for the melody+accompaniment mode (pure functions).

Same conventions as ``eval.metrics``: a roll is ``(2, T, 64)`` read through its decoded
notes; ``chroma`` is ``(T, 12)`` chord pitch classes per 16th step (all zero: no chord).
"""

from __future__ import annotations

import numpy as np

from eval.metrics import sounding
from fgg.melody_shape import STRONG_BEATS
from fgg.pianoroll import STEPS_PER_BAR, STEPS_PER_BEAT, roll_to_notes


def pitch_class_entropy(roll: np.ndarray) -> float:
    """Shannon entropy H = −Σ p(c) log₂ p(c) of the notes' pitch classes c (one count per
    note, whatever its length), in bits: 0 for one pitch class, log₂ 12 ≈ 3.585 for all
    twelve used equally; 0 for a roll without notes."""
    notes = roll_to_notes(roll)
    if not len(notes):
        return 0.0
    p = np.bincount(notes[:, 2] % 12, minlength=12) / len(notes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def longest_run_without_rest(roll: np.ndarray) -> int:
    """The longest run of consecutive 16th steps in which some note sounds, in steps
    (a melody that never breathes scores T); 0 for a roll without notes."""
    busy = np.asarray(sounding(roll).any(axis=1), dtype=bool).tolist()  # (T,)
    longest = run = 0
    for step in busy:
        run = run + 1 if step else 0
        longest = max(longest, run)
    return longest


def silent_bar_share(roll: np.ndarray) -> float:
    """Share of the bars in which no note sounds: 1 − (bars with a sounding note) / bars."""
    busy = sounding(roll).any(axis=1)  # (T,)
    return float(1 - busy.reshape(-1, STEPS_PER_BAR).any(axis=1).mean())


def highest_sounding(roll: np.ndarray) -> np.ndarray:
    """(T,) the highest sounding pitch's index on the roll's pitch axis per step, −1 where
    nothing sounds."""
    busy = sounding(roll)  # (T, P)
    return np.where(busy.any(axis=1), busy.shape[1] - 1 - busy[:, ::-1].argmax(axis=1), -1)


def below_accompaniment_share(melody: np.ndarray, accompaniment: np.ndarray) -> float:
    """Of the steps where both sound, the share where the melody's highest sounding pitch is
    below the accompaniment's highest (a buried melody); NaN when they never sound together."""
    tune, under = highest_sounding(melody), highest_sounding(accompaniment)
    both = (tune >= 0) & (under >= 0)
    return float((tune[both] < under[both]).mean()) if both.any() else float("nan")


def strong_beat_chord_tone_share(roll: np.ndarray, chroma: np.ndarray) -> float:
    """Of the notes that start on a strong beat (beats 1 and 3 of each bar) under a chord,
    the share whose pitch class is a tone of that chord. Notes starting where there is no
    chord (all-zero chroma) are left out; NaN when no note qualifies."""
    notes = roll_to_notes(roll)
    strong = [
        (s, p)
        for s, _, p in notes
        if s % STEPS_PER_BAR in [b * STEPS_PER_BEAT for b in STRONG_BEATS] and chroma[s].any()
    ]
    if not strong:
        return float("nan")
    return float(np.mean([bool(chroma[s, p % 12]) for s, p in strong]))


def pitch_class_share(roll: np.ndarray, pitch_classes) -> float:
    """Share of the notes whose pitch class is in ``pitch_classes`` (e.g. B, the
    characteristic degree of D Dorian: how modal a piece sounds, not merely in the scale);
    NaN for a roll without notes."""
    notes = roll_to_notes(roll)
    if not len(notes):
        return float("nan")
    return float(np.isin(notes[:, 2] % 12, list(pitch_classes)).mean())


def melody_statistics(roll: np.ndarray, accompaniment: np.ndarray, chroma: np.ndarray) -> dict[str, float]:
    """The melody columns of a melody+accompaniment evaluation row (melody ``roll`` and
    ``accompaniment`` (2, T, 64), ``chroma`` (T, 12))."""
    notes = roll_to_notes(roll)
    return {
        "melody_notes": len(notes),
        "melody_range": int(notes[:, 2].max() - notes[:, 2].min()) if len(notes) else 0,
        "melody_pitch_class_entropy": pitch_class_entropy(roll),
        "melody_longest_run": longest_run_without_rest(roll),
        "melody_strong_beat_chord_tones": strong_beat_chord_tone_share(roll, chroma),
        "melody_silent_bars": silent_bar_share(roll),
        "melody_below_accompaniment": below_accompaniment_share(roll, accompaniment),
    }
