import numpy as np
import pytest

from fgg.chords import (
    beats_for_chords,
    chord_name,
    parse_progression,
    pitch_class,
    to_harte,
)


def pcs(*names):
    v = np.zeros(12, dtype=np.uint8)
    for n in names:
        v[pitch_class(n)] = 1
    return v


@pytest.mark.parametrize(
    "symbol, harte, tones, root, bass",
    [
        ("C", "C:maj", ("C", "E", "G"), 0, 0),
        ("Am", "A:min", ("A", "C", "E"), 9, 9),
        ("A:min", "A:min", ("A", "C", "E"), 9, 9),
        ("C:maj7", "C:maj7", ("C", "E", "G", "B"), 0, 0),
        ("Bbmaj7", "Bb:maj7", ("Bb", "D", "F", "A"), 10, 10),
        ("F#m7b5", "F#:hdim7", ("F#", "A", "C", "E"), 6, 6),
        ("G7/B", "G:7/3", ("G", "B", "D", "F"), 7, 11),
        ("Csus4", "C:sus4", ("C", "F", "G"), 0, 0),
        ("Dm7", "D:min7", ("D", "F", "A", "C"), 2, 2),
        ("Ebdim7", "Eb:dim7", ("Eb", "Gb", "A", "C"), 3, 3),
        ("Caug", "C:aug", ("C", "E", "G#"), 0, 0),
        ("G7sus4", "G:sus4(b7)", ("G", "C", "D", "F"), 7, 7),
        ("C/E", "C:maj/3", ("C", "E", "G"), 0, 4),
        ("Am/G", "A:min/b7", ("A", "C", "E", "G"), 9, 7),  # Harte adds the bass to the chroma
        ("F#:sus4(b7)", "F#:sus4(b7)", ("F#", "B", "C#", "E"), 6, 6),
    ],
)
def test_symbol_table(symbol, harte, tones, root, bass):
    assert to_harte(symbol) == harte
    prog = parse_progression(symbol)
    assert prog.n_bars == 1 and prog.n_steps == 16
    np.testing.assert_array_equal(prog.chroma[0], pcs(*tones))
    assert prog.root[0] == root and prog.bass[0] == bass


@pytest.mark.parametrize("token", ["N.C.", "N", "NC"])
def test_no_chord(token):
    prog = parse_progression(f"C | {token}")
    assert prog.labels[4:] == ("N",) * 4
    assert prog.chroma[16:].sum() == 0 and (prog.root[16:] == -1).all() and (prog.bass[16:] == -1).all()


def test_bars_and_beat_split():
    prog = parse_progression("C G | Am F Dm | %  | E7 E7 E7 E7")
    assert beats_for_chords(3) == [2, 1, 1]
    assert (
        prog.labels
        == ("C:maj",) * 2
        + ("G:maj",) * 2
        + ("A:min",) * 2
        + ("F:maj", "D:min")
        + ("A:min",) * 2
        + ("F:maj", "D:min")
        + ("E:7",) * 4
    )
    assert prog.chroma.shape == (64, 12) and prog.chroma.dtype == np.uint8
    # step 8 is beat 3 of bar 1 -> G major
    np.testing.assert_array_equal(prog.chroma[8], pcs("G", "B", "D"))
    np.testing.assert_array_equal(prog.chroma[7], pcs("C", "E", "G"))


def test_chords_without_bar_lines_are_one_per_bar():
    from fgg.chords import describe_reading

    four = parse_progression("Am F C G")
    assert four.n_bars == 4 and four.labels[::4] == ("A:min", "F:maj", "C:maj", "G:maj")
    assert four.labels == parse_progression("Am | F | C | G").labels
    assert parse_progression("Am F | C G").n_bars == 2  # with a |, a bar holds its chords
    assert describe_reading("Am F C G") == "4 bars: Am | F | C | G"
    assert describe_reading(" C G | Am F ") == "2 bars: C G | Am F"
    assert describe_reading("Dm7") == "1 bar: Dm7"


@pytest.mark.parametrize(
    "text, message",
    [
        ("C G | Hm F", "bar 2: unrecognised chord symbol 'Hm'"),
        ("C | Cmaj7 | Cxyz", "bar 3: unknown chord quality 'xyz' in 'Cxyz'"),
        ("C:foo", "bar 1: invalid chord label 'C:foo'"),
        ("C || G", "bar 2 is empty"),
        ("C D E F G | C", "bar 1 has 5 chords"),
        ("   ", "empty chord progression"),
        ("% | C", "bar 1: '%' repeats the previous bar"),
    ],
)
def test_bad_input_names_token_and_bar(text, message):
    with pytest.raises(ValueError) as info:
        parse_progression(text)
    assert message in str(info.value)


def test_display_names():
    assert chord_name("C:min7") == "Cm7"
    assert chord_name("G:7/3") == "G7/B"
    assert chord_name("N") == "N.C."
    assert chord_name("F#:hdim7") == "F#m7b5"
