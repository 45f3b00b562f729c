"""Velocities for generated music: deterministic dynamics, and an optional seeded humanize.

The model writes notes, not loudness, so every note used to play at one velocity and the
melody was no louder than the accompaniment. ``shape_dynamics`` sets each note's velocity
from its role and metric position only — the same notes always get the same velocities,
so two A/B clips differ in music, not in how they were voiced:

    accompaniment  64, + 8 for the lowest note of an onset (the bass), + 8 on a downbeat,
                   + 4 on beat 3                               -> 64…80
    melody         88, + 6 on a downbeat, + 3 on beat 3        -> 88…94 (always above)

``humanize`` (the demo's option, never the listening test's) adds small timing and
velocity jitter drawn from a seed.
"""

from __future__ import annotations

import numpy as np
import pretty_midi

ACCOMPANIMENT_VELOCITY = 64
MELODY_VELOCITY = 88
BASS_ACCENT = 8
DOWNBEAT_ACCENT = {"accompaniment": 8, "melody": 6}
BEAT3_ACCENT = {"accompaniment": 4, "melody": 3}
STEPS_PER_BEAT, BEATS_PER_BAR = 4, 4
HUMANIZE_TIMING_MS = 12.0  # the largest timing shift of ``humanize``


def _metric_steps(starts: np.ndarray, tempo: float) -> np.ndarray:
    """Note start times (s) -> their 16th-step position inside a 4/4 bar (0…15)."""
    step = 60.0 / tempo / STEPS_PER_BEAT
    return np.rint(starts / step).astype(np.int64) % (STEPS_PER_BEAT * BEATS_PER_BAR)


def shape_dynamics(midi: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """Set the velocities of the ``melody`` and ``accompaniment`` instruments in place (others
    are left as they are) and return ``midi``. Constant-tempo 4/4 from time 0, as
    ``fgg.pianoroll.rolls_to_midi`` writes."""
    tempo = float(midi.get_tempo_changes()[1][0]) if len(midi.get_tempo_changes()[1]) else 120.0
    for inst in midi.instruments:
        role = inst.name if inst.name in DOWNBEAT_ACCENT else None
        if role is None or not inst.notes:
            continue
        starts = np.array([n.start for n in inst.notes])
        position = _metric_steps(starts, tempo)
        base = MELODY_VELOCITY if role == "melody" else ACCOMPANIMENT_VELOCITY
        onset = np.rint(starts / (60.0 / tempo / STEPS_PER_BEAT)).astype(np.int64)
        lowest: dict[int, int] = {}
        for n, t in zip(inst.notes, onset, strict=True):
            lowest[t] = min(lowest.get(t, 128), n.pitch)
        for n, t, pos in zip(inst.notes, onset, position, strict=True):
            velocity = base + (DOWNBEAT_ACCENT[role] if pos == 0 else BEAT3_ACCENT[role] if pos == 8 else 0)
            if role == "accompaniment" and n.pitch == lowest[t]:
                velocity += BASS_ACCENT
            n.velocity = int(min(127, velocity))
    return midi


def humanize(
    midi: pretty_midi.PrettyMIDI, seed: int, timing_ms: float = HUMANIZE_TIMING_MS, velocity: int = 6
) -> pretty_midi.PrettyMIDI:
    """Shift each note by ±``timing_ms`` (uniform) and its velocity by ±``velocity``, drawn
    from ``seed`` (the same seed, the same performance); in place, returns ``midi``. Each note's
    draw depends only on the seed, its track, pitch and start, so the first bars of a piece are
    played the same whether or not the rest is known yet (the app streams long pieces)."""
    for track, inst in enumerate(midi.instruments):
        for n in inst.notes:
            rng = np.random.default_rng([seed, track, n.pitch, int(round(n.start * 1e4))])
            shift = rng.uniform(-timing_ms, timing_ms) / 1000.0
            length = n.end - n.start
            n.start = max(0.0, n.start + shift)
            n.end = n.start + length
            n.velocity = int(np.clip(n.velocity + rng.integers(-velocity, velocity + 1), 1, 127))
    return midi


def pedal_at_chord_changes(
    midi: pretty_midi.PrettyMIDI, beat_labels, instrument: str = "accompaniment", lift: float = 0.02
) -> pretty_midi.PrettyMIDI:
    """Sustain pedal (CC 64) on ``instrument``, re-pedalled at every chord change: down just
    after the piece starts and after each change, up at each change and at the piece's end
    (``beat_labels``: one chord label per beat, 4/4 at the MIDI's tempo; the piece is that
    long); in place, returns ``midi``. The pedal depends on the chords alone, so the first bars
    are pedalled the same whether or not the rest of the notes are known yet."""
    tempo = float(midi.get_tempo_changes()[1][0]) if len(midi.get_tempo_changes()[1]) else 120.0
    beat = 60.0 / tempo
    changes = [b * beat for b in range(1, len(beat_labels)) if beat_labels[b] != beat_labels[b - 1]]
    end = len(beat_labels) * beat
    for inst in midi.instruments:
        if inst.name != instrument:
            continue
        events = [(lift, 127)] + [e for t in changes for e in ((t, 0), (t + lift, 127))] + [(end, 0)]
        inst.control_changes = [pretty_midi.ControlChange(64, value, when) for when, value in events]
    return midi
