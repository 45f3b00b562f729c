"""Read one POP909 song (raw files) onto a 16th-note grid.

Grid: ``beat_midi.txt`` lists every beat; each beat interval is split into 4 equal steps
(the last beat borrows the previous beat's length), so step ``s`` belongs to beat ``s // 4``
and the grid follows the song's tempo changes exactly. Note onsets/offsets, chord and key
boundaries are snapped to the nearest step time.

Bars: they start at the annotated downbeats (``b == 1``). Beats before the first downbeat
(a pickup, or a late first annotation) belong to no bar, so nothing is shifted: the grid
keeps counting from the first beat and bar lines stay where the annotation puts them.
8-beat bars (a missed downbeat) are split into two 4-beat bars; any other irregular bar
(1, 2, 3, 5, 6, 7 beats) is kept as is and simply cannot be part of a 4-bar training
segment, which must consist of four consecutive 4-beat bars. pop909-structure's corrected
bar lines are not used: they are offset from the raw MIDI and the raw downbeats already
give segments that line up with the MIDI by construction.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import pretty_midi

from fgg.chords import NO_CHORD, encode_label, pitch_class
from fgg.pianoroll import (
    BEATS_PER_BAR,
    STEPS_PER_BEAT,
    instrument_to_notes,
    quantize_times,
    resolve_overlaps,
)

MELODY_TRACKS = ("MELODY",)
ACCOMPANIMENT_TRACKS = ("BRIDGE", "PIANO")


@dataclass
class Song:
    song_id: int
    step_times: np.ndarray  # (T+1,) float64 seconds; step s spans [step_times[s], step_times[s+1])
    bar_start: np.ndarray  # (B,) int32 first step of every bar
    bar_beats: np.ndarray  # (B,) int8 beats in every bar (4 = regular)
    melody: np.ndarray  # (N, 3) int16 notes [start, end, pitch], unfolded MIDI pitches
    accompaniment: np.ndarray  # (M, 3) int16
    chroma: np.ndarray  # (T, 12) uint8 absolute chord chroma
    root: np.ndarray  # (T,) int8, -1 = no chord
    bass: np.ndarray  # (T,) int8, -1 = no chord
    beat_labels: np.ndarray  # (T // 4,) '<U24' Harte label at each beat
    key_tonic: np.ndarray  # (T,) int8 tonic pitch class, -1 = unknown
    key_minor: np.ndarray  # (T,) bool

    @property
    def n_steps(self) -> int:
        return len(self.step_times) - 1


def triple_meter_songs(pop909_dir: str) -> set[int]:
    """Song ids whose ``index.csv`` row says 3 beats per measure."""
    with open(os.path.join(pop909_dir, "index.csv"), newline="", encoding="utf-8") as f:
        return {int(row["song_id"]) for row in csv.DictReader(f) if row["num_beats_per_measure"].strip() == "3"}


def song_files(pop909_dir: str, song_id: int) -> list[str]:
    folder = os.path.join(pop909_dir, f"{song_id:03d}")
    return [
        os.path.join(folder, name)
        for name in (f"{song_id:03d}.mid", "beat_midi.txt", "chord_midi.txt", "key_audio.txt")
    ]


def _read_rows(path: str, sep: str | None = None) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [line.split(sep) for line in f if line.strip()]


def _beat_grid(beat_rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = np.array([float(r[0]) for r in beat_rows])
    downbeat = np.array([float(r[2]) == 1.0 for r in beat_rows])
    if len(times) < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("beat times must be at least two and strictly increasing")
    beat_ends = np.append(times[1:], times[-1] + (times[-1] - times[-2]))
    frac = np.arange(STEPS_PER_BEAT) / STEPS_PER_BEAT
    step_times = (times[:, None] + (beat_ends - times)[:, None] * frac).ravel()
    step_times = np.append(step_times, beat_ends[-1])
    # Bars: from each downbeat to the next one (the last runs to the end of the beat list).
    first_beats = np.flatnonzero(downbeat)
    if len(first_beats) == 0:
        raise ValueError("no downbeat in beat_midi.txt")
    lengths = np.diff(np.append(first_beats, len(times)))
    starts, beats = [], []
    for first, length in zip(first_beats, lengths, strict=True):
        if length == 2 * BEATS_PER_BAR:  # a missed downbeat in the middle
            starts += [first, first + BEATS_PER_BAR]
            beats += [BEATS_PER_BAR, BEATS_PER_BAR]
        else:
            starts.append(first)
            beats.append(length)
    bar_start = np.array(starts, dtype=np.int32) * STEPS_PER_BEAT
    return step_times, bar_start, np.array(beats, dtype=np.int8)


def _fill_intervals(rows, step_times, n_steps, encode, default):
    """Per-step values from (start_sec, end_sec, label) rows; uncovered steps get ``default``."""
    out = [default] * n_steps
    for start, end, label in rows:
        s, e = quantize_times(np.array([float(start), float(end)]), step_times)
        for t in range(max(int(s), 0), min(int(e), n_steps)):
            out[t] = encode(label)
    return out


def _parse_key(label: str) -> tuple[int, bool]:
    tonic, _, mode = label.strip().partition(":")
    if tonic in ("N", "X", ""):
        return -1, False
    return pitch_class(tonic), mode.startswith("min")


def read_song(pop909_dir: str, song_id: int) -> Song:
    """Parse one song; raises ``ValueError``/``OSError`` with the file at fault."""
    midi_path, beat_path, chord_path, key_path = song_files(pop909_dir, song_id)
    step_times, bar_start, bar_beats = _beat_grid(_read_rows(beat_path))
    n_steps = len(step_times) - 1
    midi = pretty_midi.PrettyMIDI(midi_path)

    def track_notes(names):
        parts = [instrument_to_notes(i, step_times) for i in midi.instruments if i.name.strip().upper() in names]
        if not parts:
            raise ValueError(f"{midi_path}: no track named {' or '.join(names)}")
        return resolve_overlaps(np.concatenate(parts)).astype(np.int16)

    chord_rows = [r for r in _read_rows(chord_path, "\t") if len(r) >= 3]
    labels = _fill_intervals(
        [(r[0], r[1], r[2].strip()) for r in chord_rows], step_times, n_steps, lambda lab: lab, NO_CHORD
    )
    try:
        encoded = {lab: encode_label(lab) for lab in set(labels)}
    except ValueError as err:
        raise ValueError(f"{chord_path}: {err}") from None
    keys = _fill_intervals(
        [r[:3] for r in _read_rows(key_path) if len(r) >= 3], step_times, n_steps, _parse_key, (-1, False)
    )
    return Song(
        song_id=song_id,
        step_times=step_times,
        bar_start=bar_start,
        bar_beats=bar_beats,
        melody=track_notes(MELODY_TRACKS),
        accompaniment=track_notes(ACCOMPANIMENT_TRACKS),
        chroma=np.stack([encoded[lab][1] for lab in labels]).astype(np.uint8),
        root=np.array([encoded[lab][0] for lab in labels], dtype=np.int8),
        bass=np.array([encoded[lab][2] for lab in labels], dtype=np.int8),
        beat_labels=np.array(labels[::STEPS_PER_BEAT], dtype="<U24"),
        key_tonic=np.array([k[0] for k in keys], dtype=np.int8),
        key_minor=np.array([k[1] for k in keys], dtype=bool),
    )
