"""Model conditions, laid out on the piano-roll grid so they can be concatenated as channels.

All arrays are ``(..., 2, T, 64)`` float32 on the roll's pitch axis (index p = MIDI 33 + p).

Chord + rhythm condition (the paper's chord condition that also carries rhythm):
- the 12-d chroma is written at two octaves, pitch indices ``C3_INDEX..C3_INDEX+11``
  (MIDI 48-59) and ``C4_INDEX..C4_INDEX+11`` (MIDI 60-71); every other pitch is 0;
- channel 0 = chroma x n(t), n(t) = number of accompaniment onsets at step t;
- channel 1 = chroma at steps with n(t) = 0, else 0.

Null-rhythm chord condition (rhythm dropped for classifier-free guidance): both channels
= -chroma_ext - 1, i.e. -2 on chord tones at C3/C4, -1 everywhere else. Negative values can
never occur in the rhythm variant, so the network can tell the two apart.

Melody condition: the melody roll (onset, sustain) as 0/1; the null melody is -1 everywhere.
"""

from __future__ import annotations

import numpy as np

from fgg.pianoroll import LOWEST_PITCH, N_PITCHES, ONSET

C3_INDEX = 48 - LOWEST_PITCH  # 15
C4_INDEX = 60 - LOWEST_PITCH  # 27


def chroma_on_pitch_axis(chroma: np.ndarray) -> np.ndarray:
    """(..., T, 12) chroma -> (..., T, 64) with the chroma at the C3 and C4 octaves."""
    chroma = np.asarray(chroma, dtype=np.float32)
    out = np.zeros(chroma.shape[:-1] + (N_PITCHES,), dtype=np.float32)
    out[..., C3_INDEX : C3_INDEX + 12] = chroma
    out[..., C4_INDEX : C4_INDEX + 12] = chroma
    return out


def onset_counts(roll: np.ndarray) -> np.ndarray:
    """(..., 2, T, 64) roll -> (..., T) number of onsets per step."""
    return (np.asarray(roll)[..., ONSET, :, :] > 0.5).sum(axis=-1)


def chord_condition(chroma: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(..., T, 12) chroma and (..., T) onset counts -> (..., 2, T, 64) chord+rhythm condition."""
    ext = chroma_on_pitch_axis(chroma)  # (..., T, 64)
    counts = np.asarray(counts, dtype=np.float32)[..., None]  # (..., T, 1)
    with_onsets = ext * counts
    without_onsets = ext * (counts == 0)
    return np.stack([with_onsets, without_onsets], axis=-3)


def null_rhythm_condition(chroma: np.ndarray) -> np.ndarray:
    """(..., T, 12) chroma -> (..., 2, T, 64) chord condition with the rhythm dropped."""
    null = -chroma_on_pitch_axis(chroma) - 1.0  # (..., T, 64)
    return np.stack([null, null], axis=-3)


def melody_condition(melody_roll: np.ndarray) -> np.ndarray:
    """(..., 2, T, 64) bool melody roll -> float32 condition."""
    return np.asarray(melody_roll, dtype=np.float32)


def null_melody_condition(n_steps: int, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.full(batch_shape + (2, n_steps, N_PITCHES), -1.0, dtype=np.float32)
