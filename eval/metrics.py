"""Objective metrics over piano rolls (pure functions; see ``eval/METRICS.md``).

Conventions: a roll is ``(2, T, 64)`` (onset, sustain; pitch index p = MIDI 33 + p) and is
read through its decoded notes (``fgg.pianoroll.roll_to_notes``), so a sustain pixel with no
onset before it is not a note. A pixel *sounds* at step t if a decoded note covers t.
``allowed`` is ``(T, 12)`` bool: the pitch classes allowed at each step.
"""

from __future__ import annotations

import itertools

import numpy as np

from fgg.pianoroll import (
    LOWEST_PITCH,
    N_PITCHES,
    STEPS_PER_BAR,
    out_of_key_notes,
    roll_to_notes,
)

# Key-based allowed sets (scale degrees above the tonic); minor adds the leading tone,
# as the chord table in fgg.guidance does.
MAJOR_KEY = (0, 2, 4, 5, 7, 9, 11)
MINOR_KEY = (0, 2, 3, 5, 7, 8, 10, 11)


def sounding(roll: np.ndarray) -> np.ndarray:
    """(T, 64) bool: pixels covered by a decoded note."""
    out = np.zeros(roll.shape[1:], dtype=bool)
    for start, end, pitch in roll_to_notes(roll):
        out[start:end, pitch - LOWEST_PITCH] = True
    return out


def pixel_allowed(allowed: np.ndarray) -> np.ndarray:
    """(T, 12) -> (T, 64) allowed pixels."""
    return allowed[:, (np.arange(N_PITCHES) + LOWEST_PITCH) % 12]


def out_of_key_rate(roll: np.ndarray, allowed: np.ndarray) -> float:
    """Fraction of the T steps (16th notes) that contain at least one sounding note whose
    pitch class is not allowed at that step (the FGG paper's out-of-key metric).

    Denominator: all T steps, silent ones included (one wrong note at one step of 64 ->
    1/64). An empty roll scores 0.
    """
    bad = sounding(roll) & ~pixel_allowed(allowed)  # (T, 64)
    return float(bad.any(axis=1).mean())


def out_of_key_note_rate(roll: np.ndarray, allowed: np.ndarray) -> float:
    """Fraction of notes that sound on a disallowed pitch class at any of their steps;
    0 for a roll with no notes."""
    n = len(roll_to_notes(roll))
    return out_of_key_notes(roll, allowed) / n if n else 0.0


def key_allowed(key_tonic: np.ndarray, key_minor: np.ndarray) -> np.ndarray:
    """(T,) tonic pitch class (-1 unknown) and (T,) minor flag -> (T, 12) allowed pitch
    classes of the annotated key (major scale; natural minor + leading tone); all allowed
    where the key is unknown."""
    out = np.ones((len(key_tonic), 12), dtype=bool)
    for t, (tonic, minor) in enumerate(zip(key_tonic, key_minor, strict=True)):
        if tonic >= 0:
            out[t] = False
            out[t, [(int(tonic) + d) % 12 for d in (MINOR_KEY if minor else MAJOR_KEY)]] = True
    return out


def note_density(roll: np.ndarray) -> float:
    """Notes per bar (16 steps)."""
    return len(roll_to_notes(roll)) / (roll.shape[1] / STEPS_PER_BAR)


def polyphony(roll: np.ndarray) -> float:
    """Mean number of sounding pitches over the steps where at least one sounds; 0 if silent."""
    per_step = sounding(roll).sum(axis=1)
    active = per_step[per_step > 0]
    return float(active.mean()) if len(active) else 0.0


def pitch_range(roll: np.ndarray) -> int:
    """Highest minus lowest MIDI pitch of all notes, in semitones; 0 with fewer than 1 note."""
    notes = roll_to_notes(roll)
    return int(notes[:, 2].max() - notes[:, 2].min()) if len(notes) else 0


def groove_similarity(roll: np.ndarray, reference: np.ndarray) -> float:
    """Grooving-pattern similarity (Wu & Yang 2020) between bar-aligned rolls: each bar's
    groove is its 16-step onset vector g (1 where any note starts); similarity of two bars =
    1 − |g_a XOR g_b| / 16, averaged over the bars both rolls share."""
    bars = min(roll.shape[1], reference.shape[1]) // STEPS_PER_BAR
    a = (roll[0] > 0.5).any(axis=1)[: bars * STEPS_PER_BAR].reshape(bars, STEPS_PER_BAR)
    b = (reference[0] > 0.5).any(axis=1)[: bars * STEPS_PER_BAR].reshape(bars, STEPS_PER_BAR)
    return float(1.0 - (a ^ b).mean())


def _histogram(values: np.ndarray, bins: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian-smoothed, normalised histogram on ``bins`` (a discrete KDE)."""
    if len(values) == 0:
        return np.zeros(len(bins))
    density = np.exp(-0.5 * ((bins[:, None] - values[None, :]) / bandwidth) ** 2).sum(axis=1)
    return density / density.sum()


def overlapping_area(a: np.ndarray, b: np.ndarray, bins: np.ndarray, bandwidth: float = 1.0) -> float:
    """Overlapping area (Yang & Lerch 2020) of the smoothed distributions of two samples:
    OA = Σ_bins min(p_a, p_b) ∈ [0, 1]. Both empty -> 1 (identical); one empty -> 0."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    if len(a) == 0 or len(b) == 0:
        return 0.0
    return float(np.minimum(_histogram(a, bins, bandwidth), _histogram(b, bins, bandwidth)).sum())


def note_features(roll: np.ndarray) -> dict[str, np.ndarray]:
    """Pitches (MIDI), durations (steps) and inter-onset intervals (steps between
    successive distinct onset times) of a roll's notes."""
    notes = roll_to_notes(roll)
    onsets = np.unique(notes[:, 0])
    return {
        "pitch": notes[:, 2].astype(float),
        "duration": (notes[:, 1] - notes[:, 0]).astype(float),
        "ioi": np.diff(onsets).astype(float),
    }


OA_BINS = {
    "pitch": np.arange(LOWEST_PITCH, LOWEST_PITCH + N_PITCHES, dtype=float),
    "duration": np.arange(1, 65, dtype=float),
    "ioi": np.arange(1, 65, dtype=float),
}


def overlap_metrics(roll: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """OA of pitch, duration and IOI distributions of ``roll`` against ``reference``."""
    a, b = note_features(roll), note_features(reference)
    return {f"oa_{k}": overlapping_area(a[k], b[k], OA_BINS[k]) for k in OA_BINS}


def roll_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 − Jaccard similarity of the onset pixels of two rolls (0 identical, 1 disjoint;
    two empty rolls are identical)."""
    x, y = a[0] > 0.5, b[0] > 0.5
    union = (x | y).sum()
    return float(1.0 - (x & y).sum() / union) if union else 0.0


def diversity(rolls: list[np.ndarray]) -> float:
    """Mean pairwise ``roll_distance`` over samples drawn for the same condition; NaN for
    fewer than two samples."""
    pairs = list(itertools.combinations(range(len(rolls)), 2))
    if not pairs:
        return float("nan")
    return float(np.mean([roll_distance(rolls[i], rolls[j]) for i, j in pairs]))


def beat_chord_accuracy(predicted_labels: list[str], reference_labels: list[str]) -> float:
    """Fraction of beats whose recognised chord matches the reference label, compared as
    root + major/minor family (``smg_metrics`` normalisation); beats whose reference is
    ``N`` are left out. NaN when no beat has a reference chord."""
    # smg_metrics' submodules are slow to import (up to ~5 s): only scoring needs them
    from smg_metrics.chord_accuracy import _normalize_label

    pairs = [(p, r) for p, r in zip(predicted_labels, reference_labels, strict=True) if _normalize_label(r) != "N"]
    if not pairs:
        return float("nan")
    return float(np.mean([_normalize_label(p) == _normalize_label(r) for p, r in pairs]))


def notes_changed(roll: np.ndarray, reference: np.ndarray) -> int:
    """Size of the symmetric difference of the two rolls' note sets (a note = start, end,
    pitch): how many notes an edit removed, added or altered (an altered note counts 2)."""
    a = {tuple(n) for n in roll_to_notes(roll).tolist()}
    b = {tuple(n) for n in roll_to_notes(reference).tolist()}
    return len(a ^ b)
