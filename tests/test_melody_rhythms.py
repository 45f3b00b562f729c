"""Melody rhythms by name (fgg.melody_rhythms): reading a melody's rhythm, naming it, the
committed library of POP909's most frequent ones."""

import numpy as np
import pytest

from fgg.melody_rhythms import (
    TOP_ONE_BAR,
    TOP_TWO_BARS,
    describe,
    library,
    melody_symbols,
    parse_key,
    parse_pattern,
    pattern_text,
    starts_by_accompaniment,
    suited_rhythm,
)
from fgg.melody_shape import HOLD, REST, START
from fgg.pianoroll import STEPS_PER_BAR


def test_a_pattern_reads_and_writes_back_and_refuses_what_is_not_whole_bars():
    pattern = "x---x---x-x-x..."
    symbols = parse_pattern(pattern)
    assert symbols[:5].tolist() == [START, HOLD, HOLD, HOLD, START] and symbols[-1] == REST
    assert pattern_text(symbols) == pattern
    for bad in ("x---", "x---x---x---x--y", ""):
        with pytest.raises(ValueError, match="whole bars of 16 characters"):
            parse_pattern(bad)


@pytest.mark.parametrize(
    "pattern, key, name",
    [
        ("x---x---x---x---", "q-q-q-q", "quarter · quarter · quarter · quarter"),
        ("x-x-x-x-x-------", "e-e-e-e-h", "eighth · eighth · eighth · eighth · half"),
        ("x-----------....", "h.-rq", "dotted half · quarter rest"),
        ("--x-------------", "te-14s", "tied eighth · 14 sixteenths"),
    ],
)
def test_a_rhythm_is_named_in_note_values_and_read_back_from_its_key(pattern, key, name):
    assert describe(parse_pattern(pattern)) == (key, name)
    assert pattern_text(parse_key(key)) == pattern


@pytest.mark.parametrize(
    "key, words",
    [("q-q-q", "whole bars"), ("q-x-h", "'x' in melody rhythm"), ("q-tq-h-q", "only a rhythm's first note")],
)
def test_a_key_that_is_no_rhythm_is_refused_by_name(key, words):
    with pytest.raises(ValueError, match=words):
        parse_key(key)


def test_a_melodys_rhythm_is_its_top_line_each_note_cut_by_the_next_start():
    notes = np.array([[0, 8, 60], [2, 4, 62], [10, 12, 64], [10, 14, 67], [20, 40, 65]])
    symbols = melody_symbols(notes, 2 * STEPS_PER_BAR)
    assert pattern_text(symbols) == "x-x-......x---......x-----------"


def test_the_committed_library_ranks_pop909s_rhythms_with_unique_keys():
    rhythms = list(library().values())
    assert len(rhythms) == TOP_ONE_BAR + TOP_TWO_BARS  # keys are unique
    one_bar = [r for r in rhythms if len(r.pattern) == STEPS_PER_BAR]
    assert len(one_bar) == TOP_ONE_BAR and all(len(r.pattern) == 2 * STEPS_PER_BAR for r in rhythms[TOP_ONE_BAR:])
    shares = [r.share for r in one_bar]
    assert shares == sorted(shares, reverse=True) and 0 < shares[-1] < shares[0] < 1
    for r in rhythms:
        assert describe(r.symbols) == (r.key, r.name) and "x" in r.pattern


class Songs:
    """The fields of a ``fgg.data.SongCollection`` that the rhythm statistics read."""

    def __init__(self, songs):
        self.song_id = np.arange(len(songs))
        self.songs = songs

    def get(self, field, index):
        return self.songs[index][field]


def test_melody_starts_are_counted_by_the_accompaniment_onsets_of_the_same_bar(monkeypatch):
    bar = STEPS_PER_BAR
    song = {
        "bar_start": np.array([0, bar, 2 * bar]),
        "bar_beats": np.array([4, 4, 3]),  # the 3/4 bar is left out
        # bar 1: 2 melody starts over 4 accompaniment onset steps; bar 2: 4 starts over none
        "melody": np.array([[0, 4, 72], [8, 12, 74], [16, 18, 72], [20, 22, 72], [24, 26, 72], [28, 30, 72]]),
        "accompaniment": np.array([[0, 4, 48], [0, 4, 52], [4, 8, 48], [8, 12, 48], [12, 16, 48], [40, 44, 48]]),
    }
    overall, by_onsets = starts_by_accompaniment(Songs([song]), {0})
    assert by_onsets == {} and overall == 3.0  # fewer than MIN_BARS bars per count: no median of its own
    import fgg.melody_rhythms as R

    monkeypatch.setattr(R, "MIN_BARS", 1)
    assert starts_by_accompaniment(Songs([song]), {0})[1] == {0: 4.0, 4: 2.0}


def test_a_suited_rhythm_is_the_two_bar_phrase_nearest_pop909s_melody_density(monkeypatch):
    import fgg.melody_rhythms as R

    monkeypatch.setattr(R, "_starts_per_bar", lambda: (6.0, {0: 3.0, 4: 5.0, 16: 7.0}))
    phrases = [r for r in library().values() if len(r.pattern) == 2 * STEPS_PER_BAR]

    def nearest(target):
        best = min(abs(r.pattern.count("x") / 2 - target) for r in phrases)
        return [r for r in phrases if abs(r.pattern.count("x") / 2 - target) == best][0]  # the most common

    quarters = np.tile([4, 0, 0, 0], 8)  # 4 onset steps a bar
    assert suited_rhythm(quarters) == (nearest(5.0), 5.0)
    assert suited_rhythm(np.zeros(32, int)) == (nearest(3.0), 3.0)
    assert suited_rhythm(np.ones(32, int))[1] == 7.0 and suited_rhythm(None) == (nearest(6.0), 6.0)
    assert suited_rhythm(np.tile([1, 1, 0, 0], 8))[1] == 5.0  # 8 onset steps: the nearest measured count, 4
