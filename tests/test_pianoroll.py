import numpy as np
import pytest

from fgg.pianoroll import (
    LOWEST_PITCH,
    ONSET,
    SUSTAIN,
    fold_pitches,
    midi_to_notes,
    notes_to_roll,
    resolve_overlaps,
    roll_to_notes,
    rolls_to_midi,
)


def test_fold_pitches():
    folded, n = fold_pitches(np.array([21, 32, 33, 60, 96, 97, 108, 127]))
    assert folded.tolist() == [33, 44, 33, 60, 96, 85, 96, 91]
    assert n == 5


def test_roll_layout_and_decode():
    notes = np.array([[0, 4, 60], [2, 3, 33], [4, 8, 60], [10, 64, 96]])
    roll = notes_to_roll(notes, 64)
    assert roll.shape == (2, 64, 64) and roll.dtype == bool
    p60 = 60 - LOWEST_PITCH
    assert roll[ONSET, [0, 4], p60].all() and roll[ONSET].sum() == 4
    assert roll[SUSTAIN, 1:4, p60].all() and not roll[SUSTAIN, 0, p60]  # onset step not in sustain
    assert roll[SUSTAIN, 5:8, p60].all() and not roll[SUSTAIN, 8, p60]
    # repeated note at the same pitch stays two notes ("onset wins")
    np.testing.assert_array_equal(roll_to_notes(roll), notes[np.lexsort((notes[:, 2], notes[:, 0]))])


def test_roll_to_notes_threshold_and_orphan_sustain():
    roll = np.zeros((2, 8, 64), dtype=np.float32)
    roll[SUSTAIN, 0:3, 5] = 0.9  # sustain with no onset: ignored
    roll[ONSET, 4, 5] = 0.51
    roll[SUSTAIN, 5, 5] = 0.7
    roll[SUSTAIN, 6, 5] = 0.5  # not above threshold: the note ends at step 6
    assert roll_to_notes(roll).tolist() == [[4, 6, LOWEST_PITCH + 5]]


def test_resolve_overlaps():
    notes = np.array([[0, 8, 60], [4, 6, 60], [0, 2, 60], [1, 3, 62]])
    assert resolve_overlaps(notes).tolist() == [[0, 4, 60], [1, 3, 62], [4, 6, 60]]


def test_random_rolls_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        start = rng.integers(0, 64, 40)
        notes = np.stack([start, start + rng.integers(1, 20, 40), rng.integers(33, 97, 40)], 1)
        notes = resolve_overlaps(np.minimum(notes, [64, 64, 127]))
        np.testing.assert_array_equal(roll_to_notes(notes_to_roll(notes, 64)), notes)


@pytest.mark.parametrize("tempo", [60, 90, 137.5])
def test_midi_round_trip(tempo):
    rng = np.random.default_rng(1)
    start = rng.integers(0, 64, 30)
    notes = resolve_overlaps(
        np.stack([start, np.minimum(start + rng.integers(1, 9, 30), 64), rng.integers(33, 97, 30)], 1)
    )
    roll = notes_to_roll(notes, 64)
    midi = rolls_to_midi({"melody": np.zeros_like(roll), "accompaniment": roll}, tempo, programs={"accompaniment": 4})
    assert [i.name for i in midi.instruments] == ["melody", "accompaniment"]
    assert midi.instruments[1].program == 4
    assert min(n.start for n in midi.instruments[1].notes) >= 0
    assert abs(midi.get_tempo_changes()[1][0] - tempo) < 1e-6
    np.testing.assert_array_equal(midi_to_notes(midi, tracks=["accompaniment"]), notes)


def test_bad_roll_shape_is_rejected():
    with pytest.raises(ValueError, match=r"roll must be \(2, T, 64\)"):
        roll_to_notes(np.zeros((2, 64, 12)))


def test_bad_tempo_is_rejected():
    with pytest.raises(ValueError, match="tempo 0"):
        rolls_to_midi({"a": np.zeros((2, 64, 64), bool)}, 0)
