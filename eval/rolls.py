"""The sampled rolls an evaluation keeps: bit-packed per (system, seed) in ``rolls/``, resumable
(which segments each file holds, which are filled), and MIDI examples of the first segments."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eval.baselines import split_tracks
from fgg.modes import ACCOMPANIMENT, Mode
from fgg.pianoroll import rolls_to_midi

EXAMPLE_SEGMENTS = 3


def pack(rolls: np.ndarray) -> np.ndarray:
    return np.packbits(rolls.astype(bool), axis=-1)


def unpack(packed: np.ndarray) -> np.ndarray:
    return np.unpackbits(packed, axis=-1).astype(bool)


def load_stored_rolls(path: Path, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(rolls, filled (N,) bool) stored by an earlier run — a finished system has every
    segment filled, an interrupted one those sampled before it stopped — or None when absent
    or made for other segments (a run in the same folder with another ``--segments``):
    those are resampled, never reused."""
    if not path.is_file():
        return None
    stored = np.load(path)
    if "segments" not in stored or not np.array_equal(stored["segments"], chosen):
        return None
    filled = stored["filled"] if "filled" in stored else np.ones(len(chosen), dtype=bool)
    return unpack(stored["rolls"]), filled


def save_rolls(path: Path, rolls: np.ndarray, chosen: np.ndarray, filled: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, rolls=pack(rolls), segments=chosen, filled=filled)
    os.replace(tmp, path)


def write_examples(
    out: Path, system: str, chosen: np.ndarray, rolls: np.ndarray, segments: dict, mode: Mode = ACCOMPANIMENT
) -> None:
    """MIDI of the first segments: the system's tracks, with the segment's melody where the
    mode does not write one."""
    (out / "midi").mkdir(exist_ok=True)
    for j, seg in enumerate(chosen[:EXAMPLE_SEGMENTS]):
        tracks = {"melody": segments["melody"][seg]} | split_tracks(mode, rolls[j])
        midi = rolls_to_midi(tracks, float(segments["tempo"][seg]))
        midi.write(str(out / "midi" / f"segment{int(seg):04d}_{system}.mid"))
