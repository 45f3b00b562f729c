import numpy as np

from fgg.chords import parse_progression
from fgg.condition import (
    C3_INDEX,
    C4_INDEX,
    chord_condition,
    null_melody_condition,
    null_rhythm_condition,
    onset_counts,
)
from fgg.pianoroll import notes_to_roll


def test_chord_condition_layout():
    chroma = parse_progression("C").chroma  # C E G for 16 steps
    roll = notes_to_roll(np.array([[0, 4, 60], [0, 4, 64], [4, 8, 67]]), 16)
    counts = onset_counts(roll)
    assert counts[:5].tolist() == [2, 0, 0, 0, 1]
    cond = chord_condition(chroma, counts)
    assert cond.shape == (2, 16, 64) and cond.dtype == np.float32
    # C3 = MIDI 48, C4 = MIDI 60: chord tones C, E, G at both octaves
    for base in (C3_INDEX, C4_INDEX):
        assert cond[0, 0, base + 0] == 2 and cond[0, 0, base + 4] == 2 and cond[0, 0, base + 7] == 2
        assert cond[0, 0, base + 1] == 0
        assert cond[0, 4, base] == 1 and cond[1, 4].sum() == 0  # onset step: only channel 0
        assert cond[1, 1, base] == 1 and cond[0, 1].sum() == 0  # no onset: chroma in channel 1
    assert np.count_nonzero(cond[:, 0]) == 6  # nothing outside the two chroma octaves


def test_null_conditions():
    chroma = parse_progression("Am").chroma
    null = null_rhythm_condition(chroma)
    assert null.shape == (2, 16, 64)
    assert (null[0] == null[1]).all()
    assert null[0, 0, C3_INDEX + 9] == -2 and null[0, 0, C4_INDEX + 9] == -2  # A is a chord tone
    assert null[0, 0, 0] == -1 and null[0, 0, C3_INDEX + 1] == -1
    assert (null_melody_condition(64, (3,)) == -1).all() and null_melody_condition(64, (3,)).shape == (3, 2, 64, 64)


def test_batched_condition():
    chroma = np.stack([parse_progression("C").chroma, parse_progression("G").chroma])
    counts = np.zeros((2, 16))
    assert chord_condition(chroma, counts).shape == (2, 2, 16, 64)
