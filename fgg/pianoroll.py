"""Piano-roll representation shared by the data pipeline, the model and every MIDI writer.

Grid: a 16th-note step grid (4 steps per beat, 16 per 4/4 bar); a model window is
``SEGMENT_BARS`` = 4 bars = ``SEGMENT_STEPS`` = 64 steps.

Pitch axis: ``N_PITCHES`` = 64 pitches, index ``p`` is MIDI pitch ``LOWEST_PITCH + p``
(MIDI 33 = A1 up to MIDI 96 = C7). Notes outside that range are octave-folded in.

Roll layout: ``(2, T, 64)`` with channel ``ONSET`` = 0 (1 where a note starts) and
channel ``SUSTAIN`` = 1 (1 on every later step the note still sounds; the onset step itself
is *not* marked in the sustain channel). A note is therefore an onset pixel followed by its
run of sustain pixels at the same pitch; a new onset ends the previous note at that pitch
("onset wins"), which is how two repeated notes stay two notes.

Notes are integer arrays ``(N, 3)`` of ``[start_step, end_step, midi_pitch]`` with
``end_step > start_step`` (end exclusive), sorted by (start, pitch).
"""

from __future__ import annotations

import numpy as np
import pretty_midi

STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR  # 16
SEGMENT_BARS = 4
SEGMENT_STEPS = SEGMENT_BARS * STEPS_PER_BAR  # 64
LOWEST_PITCH = 33  # A1
HIGHEST_PITCH = 96  # C7
N_PITCHES = HIGHEST_PITCH - LOWEST_PITCH + 1  # 64
ONSET, SUSTAIN = 0, 1
NOTE_THRESHOLD = 0.5  # a pixel is "on" above this value (the paper's binarisation threshold)


def fold_pitches(pitches: np.ndarray) -> tuple[np.ndarray, int]:
    """Octave-fold MIDI pitches into [LOWEST_PITCH, HIGHEST_PITCH]; returns (folded, n_changed).

    The range spans 64 semitones (> one octave), so every pitch has exactly one nearest
    in-range octave: pitches below are raised, pitches above lowered, by whole octaves.
    """
    pitches = np.asarray(pitches, dtype=np.int64)
    below = pitches < LOWEST_PITCH
    above = pitches > HIGHEST_PITCH
    folded = pitches.copy()
    folded[below] += 12 * ((LOWEST_PITCH - pitches[below] + 11) // 12)
    folded[above] -= 12 * ((pitches[above] - HIGHEST_PITCH + 11) // 12)
    return folded, int(below.sum() + above.sum())


def notes_to_roll(notes: np.ndarray, n_steps: int) -> np.ndarray:
    """Render notes ``(N, 3)`` [start, end, pitch] into a boolean roll ``(2, n_steps, 64)``.

    Pitches must already be in range (see ``fold_pitches``); notes are clipped to
    ``[0, n_steps)``, and notes starting outside it are ignored.
    """
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    roll = np.zeros((2, n_steps, N_PITCHES), dtype=bool)  # (2, T, P)
    keep = (notes[:, 0] >= 0) & (notes[:, 0] < n_steps)
    start, end, pitch = notes[keep, 0], np.minimum(notes[keep, 1], n_steps), notes[keep, 2] - LOWEST_PITCH
    if np.any((pitch < 0) | (pitch >= N_PITCHES)):
        raise ValueError(f"pitch outside MIDI {LOWEST_PITCH}-{HIGHEST_PITCH}; fold it first")
    roll[ONSET, start, pitch] = True
    # Sustain runs [start+1, end) via a difference array: +1 where a run opens, -1 where it closes.
    delta = np.zeros((n_steps + 1, N_PITCHES), dtype=np.int32)
    np.add.at(delta, (start + 1, pitch), 1)
    np.add.at(delta, (end, pitch), -1)
    roll[SUSTAIN] = np.cumsum(delta[:-1], axis=0) > 0
    return roll


def roll_to_notes(roll: np.ndarray, threshold: float = NOTE_THRESHOLD) -> np.ndarray:
    """Decode a roll ``(2, T, 64)`` (bool or real-valued) into notes ``(N, 3)``.

    A note starts at every onset pixel > threshold and lasts while the sustain pixels at
    the same pitch stay > threshold, stopping at the next onset. Sustain pixels with no
    onset before them are ignored.
    """
    roll = np.asarray(roll)
    if roll.ndim != 3 or roll.shape[0] != 2 or roll.shape[2] != N_PITCHES:
        raise ValueError(f"roll must be (2, T, {N_PITCHES}), got {roll.shape}")
    onset = roll[ONSET] > threshold  # (T, P)
    sustain = roll[SUSTAIN] > threshold  # (T, P)
    n_steps = onset.shape[0]
    starts_t, starts_p = np.nonzero(onset)
    # For each (t, p): the first step >= t where the sustain run at p is broken (no sustain
    # or a new onset); computed backwards so decoding is one vectorised pass.
    stops = ~sustain | onset
    next_stop = np.full((n_steps + 1, N_PITCHES), n_steps, dtype=np.int64)
    for t in range(n_steps - 1, -1, -1):
        next_stop[t] = np.where(stops[t], t, next_stop[t + 1])
    ends = next_stop[starts_t + 1, starts_p]
    notes = np.stack([starts_t, ends, starts_p + LOWEST_PITCH], axis=1).astype(np.int64)
    return sort_notes(notes)


def out_of_key_notes(roll: np.ndarray, allowed_pcs: np.ndarray) -> int:
    """Notes of ``roll`` (2, T, 64) that sound, at any of their steps, on a pitch class not
    allowed there (``allowed_pcs`` (T, 12) bool)."""
    return int(sum(not allowed_pcs[s:e, p % 12].all() for s, e, p in roll_to_notes(roll)))


def sort_notes(notes: np.ndarray) -> np.ndarray:
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def resolve_overlaps(notes: np.ndarray) -> np.ndarray:
    """Make notes representable in a roll: one note per (start, pitch) (the longest wins)
    and a note is cut where the next note at its pitch starts (the roll's "onset wins")."""
    notes = sort_notes(notes)
    if len(notes) == 0:
        return notes
    # Longest first within identical (pitch, start), then drop the duplicates.
    order = np.lexsort((-notes[:, 1], notes[:, 0], notes[:, 2]))
    notes = notes[order]
    same = (notes[1:, 2] == notes[:-1, 2]) & (notes[1:, 0] == notes[:-1, 0])
    notes = notes[np.concatenate([[True], ~same])]
    # Now sorted by (pitch, start): cut each note at its successor's onset at the same pitch.
    nxt_same_pitch = np.concatenate([notes[1:, 2] == notes[:-1, 2], [False]])
    nxt_start = np.concatenate([notes[1:, 0], [np.iinfo(np.int64).max]])
    notes[:, 1] = np.where(nxt_same_pitch, np.minimum(notes[:, 1], nxt_start), notes[:, 1])
    return sort_notes(notes)


def roll_to_instrument(
    roll: np.ndarray, tempo: float, program: int = 0, velocity: int = 80, name: str = "", start_time: float = 0.0
) -> pretty_midi.Instrument:
    """One pretty_midi instrument from a roll; a step lasts 60 / tempo / 4 seconds."""
    step = 60.0 / float(tempo) / STEPS_PER_BEAT
    inst = pretty_midi.Instrument(program=int(program), name=name)
    for start, end, pitch in roll_to_notes(roll):
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(velocity), pitch=int(pitch), start=start_time + start * step, end=start_time + end * step
            )
        )
    return inst


def rolls_to_midi(
    tracks: dict[str, np.ndarray],
    tempo: float,
    programs: dict[str, int] | None = None,
    velocities: dict[str, int] | None = None,
) -> pretty_midi.PrettyMIDI:
    """A ``PrettyMIDI`` with one instrument per named roll (e.g. ``melody``, ``accompaniment``),
    starting at bar 1, time 0, at a constant ``tempo`` (quarter notes per minute) in 4/4."""
    if not (1.0 <= float(tempo) <= 400.0):
        raise ValueError(f"tempo {tempo} outside 1-400 BPM")
    programs = programs or {}
    velocities = velocities or {}
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    for name, roll in tracks.items():
        midi.instruments.append(
            roll_to_instrument(roll, tempo, programs.get(name, 0), velocities.get(name, 80), name=name)
        )
    return midi


def instrument_to_notes(instrument: pretty_midi.Instrument, step_times: np.ndarray) -> np.ndarray:
    """Quantize an instrument's notes to a step grid given by the step start times
    (seconds, increasing; one extra entry closes the last step). Returns unfolded notes
    ``(N, 3)``; notes whose onset is more than half a step outside the grid are dropped."""
    if not instrument.notes:
        return np.zeros((0, 3), dtype=np.int64)
    on = np.array([n.start for n in instrument.notes])
    off = np.array([n.end for n in instrument.notes])
    pitch = np.array([n.pitch for n in instrument.notes], dtype=np.int64)
    start = quantize_times(on, step_times)
    end = np.maximum(quantize_times(off, step_times), start + 1)
    n_steps = len(step_times) - 1
    first_len = step_times[1] - step_times[0]
    last_len = step_times[-1] - step_times[-2]
    inside = (on >= step_times[0] - first_len / 2) & (on < step_times[-1] - last_len / 2)
    notes = np.stack([start, np.minimum(end, n_steps), pitch], axis=1)[inside]
    return resolve_overlaps(notes)


def quantize_times(times: np.ndarray, step_times: np.ndarray) -> np.ndarray:
    """Index of the nearest grid time for each time (grid = step start times)."""
    times = np.asarray(times, dtype=np.float64)
    idx = np.clip(np.searchsorted(step_times, times), 1, len(step_times) - 1)
    left, right = step_times[idx - 1], step_times[idx]
    return np.where(times - left <= right - times, idx - 1, idx).astype(np.int64)


def midi_to_notes(midi: pretty_midi.PrettyMIDI, tempo: float | None = None, tracks=None) -> np.ndarray:
    """Notes of a MIDI file on a constant-tempo 16th grid starting at time 0 (for user
    uploads and for reading back what ``rolls_to_midi`` wrote). ``tracks``: instrument
    names to keep (default all non-drum instruments)."""
    if tempo is None:
        tempo = float(midi.get_tempo_changes()[1][0]) if len(midi.get_tempo_changes()[1]) else 120.0
    step = 60.0 / tempo / STEPS_PER_BEAT
    insts = [i for i in midi.instruments if not i.is_drum and (tracks is None or i.name in tracks)]
    end = max([n.end for i in insts for n in i.notes], default=0.0)
    step_times = np.arange(int(np.ceil(end / step)) + 2) * step
    parts = [instrument_to_notes(i, step_times) for i in insts]
    return resolve_overlaps(np.concatenate(parts)) if parts else np.zeros((0, 3), dtype=np.int64)
