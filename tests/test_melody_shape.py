"""The melody's shape as projections of x̂₀ (fgg.melody_shape), on inputs whose answer is known."""

import numpy as np
import pytest
import torch

from fgg.melody_shape import (
    DEFAULT_REGISTER,
    HOLD,
    NO_PITCH,
    REST,
    START,
    free_rhythm,
    melody_shape_denoiser,
    pin,
    pin_rhythm,
    register_window,
    strong_beat_starts,
)
from fgg.pianoroll import LOWEST_PITCH, N_PITCHES, NOTE_THRESHOLD, STEPS_PER_BAR, roll_to_notes

T, P = 2 * STEPS_PER_BAR, N_PITCHES


def sounding(x0: torch.Tensor, channel: int = 0) -> torch.Tensor:
    """(B, T) how many melody pixels (onset or sustain) are above the threshold at each step."""
    return ((x0[:, channel : channel + 2] > NOTE_THRESHOLD).sum(1) > 0).sum(-1)


def test_the_register_window_is_inclusive_and_at_least_an_octave():
    window = register_window(60, 72)
    assert window.sum() == 13 and window[60 - LOWEST_PITCH] and window[72 - LOWEST_PITCH]
    assert not window[59 - LOWEST_PITCH] and not window[73 - LOWEST_PITCH]
    with pytest.raises(ValueError, match="at least an octave"):
        register_window(60, 70)


def test_pin_raises_exactly_the_given_notes_and_lowers_the_rest():
    x0 = torch.rand(1, 4, T, P)
    pitch = torch.full((1, T), NO_PITCH)
    kind = torch.full((1, T), REST)
    pitch[0, 3:6], kind[0, 3], kind[0, 4:6] = 10, START, HOLD
    out = pin(x0, pitch, kind)
    on = out[:, :2] > NOTE_THRESHOLD
    assert on.sum() == 3 and on[0, 0, 3, 10] and on[0, 1, 4, 10] and on[0, 1, 5, 10]
    torch.testing.assert_close(out[:, 2:], x0[:, 2:])  # the accompaniment is not touched
    below = x0[:, :2] <= NOTE_THRESHOLD  # values already on the right side are kept
    assert torch.equal(out[:, :2][below & ~on], x0[:, :2][below & ~on])


def test_a_given_rhythm_is_met_exactly_with_the_models_favourite_open_pitch():
    x0 = torch.full((1, 2, T, P), 0.2)
    x0[0, 0, 0, 30] = 0.9  # the model wants pitch 30 at the first start ...
    x0[0, 1, 1:4, 31] = 0.8  # ... but rates 31 higher over the whole note
    x0[0, 0, 8, 5] = 0.95  # a strong onset outside the open pitches
    rhythm = torch.full((1, T), REST)
    rhythm[0, 0], rhythm[0, 1:4] = START, HOLD
    rhythm[0, 8], rhythm[0, 9] = START, HOLD
    rhythm[0, 20] = HOLD  # a hold after a rest is a rest
    open_pixels = torch.zeros(1, T, P, dtype=torch.bool)
    open_pixels[..., 20:40] = True
    pitch, kind = pin_rhythm(x0, rhythm, open_pixels)
    expected = rhythm.clone()
    expected[0, 20] = REST
    assert torch.equal(kind, expected)
    assert pitch[0, 0] == 31 and torch.all(pitch[0, 1:4] == 31)
    assert 20 <= pitch[0, 8] < 40 and pitch[0, 9] == pitch[0, 8]
    out = pin(x0, pitch, kind)
    assert torch.equal(sounding(out)[0], (expected[0] != REST).long())


def test_a_note_whose_pitch_closes_is_cut_not_played_out_of_key():
    x0 = torch.full((1, 2, T, P), 0.2)
    rhythm = torch.full((1, T), REST)
    rhythm[0, 0], rhythm[0, 1:8] = START, HOLD
    open_pixels = torch.zeros(1, T, P, dtype=torch.bool)
    open_pixels[0, :4, 10] = True  # no pitch is open over the whole note
    open_pixels[0, 4:, 12] = True
    pitch, kind = pin_rhythm(x0, rhythm, open_pixels)
    assert kind[0, :4].tolist() == [START, HOLD, HOLD, HOLD] and torch.all(kind[0, 4:] == REST)
    assert torch.all(pitch[0, :4] == 10)


def test_free_rhythm_keeps_the_models_notes_one_at_a_time():
    x0 = torch.full((1, 2, T, P), 0.1)
    x0[0, 0, 0, 20], x0[0, 1, 1:4, 20] = 0.9, 0.8  # a note of 4 steps
    x0[0, 0, 2, 25] = 0.95  # a second note starting inside it: it wins, being rated higher
    x0[0, 0, 0, 27] = 0.7  # a chord at step 0: the lower-rated note goes
    x0[0, 1, 10, 30] = 0.9  # a sustain that continues nothing is silent
    open_pixels = torch.ones(1, T, P, dtype=torch.bool)
    pitch, kind = free_rhythm(x0, open_pixels, min_starts=1)
    assert kind[0, :4].tolist() == [START, HOLD, START, REST]
    assert pitch[0, :3].tolist() == [20, 20, 25]
    assert kind[0, 10] == REST
    out = pin(x0, pitch, kind)
    assert sounding(out).max() <= 1


def test_free_rhythm_fills_a_silent_bar_with_its_best_open_onset_held_for_a_beat():
    x0 = torch.full((1, 2, T, P), 0.1)
    x0[0, 0, 0, 20] = 0.9  # bar 1 has a note; bar 2 is silent
    x0[0, 0, STEPS_PER_BAR + 6, 33] = 0.45  # the best onset of bar 2, below the threshold
    x0[0, 0, STEPS_PER_BAR + 6, 40] = 0.49  # higher, but not open
    open_pixels = torch.ones(1, T, P, dtype=torch.bool)
    open_pixels[..., 40] = False
    pitch, kind = free_rhythm(x0, open_pixels, min_starts=1)
    bar2 = slice(STEPS_PER_BAR, 2 * STEPS_PER_BAR)
    assert (kind[0, bar2] == START).sum() == 1 and kind[0, STEPS_PER_BAR + 6] == START
    assert kind[0, STEPS_PER_BAR + 7 : STEPS_PER_BAR + 10].tolist() == [HOLD] * 3
    assert torch.all(pitch[0, STEPS_PER_BAR + 6 : STEPS_PER_BAR + 10] == 33)
    assert (kind[0, :STEPS_PER_BAR] == START).sum() == 1  # bar 1 already had its start


@pytest.mark.parametrize("with_rhythm", [False, True])
def test_the_denoiser_guarantees_hold_on_random_predictions(with_rhythm):
    torch.manual_seed(0)
    b = 3
    open_pixels = torch.rand(b, T, P) > 0.6
    open_pixels[..., 0] = True  # at least one open pitch per step
    rhythm = torch.randint(0, 3, (b, T)) if with_rhythm else None
    denoise = melody_shape_denoiser(lambda x, t: x, open_pixels, rhythm, min_starts=2)
    out = denoise(torch.randn(b, 4, T, P), torch.zeros(b))
    on = out[:, :2] > NOTE_THRESHOLD
    assert not (on & ~open_pixels[:, None]).any()  # only open pitches
    assert sounding(out).max() <= 1  # one note at a time
    starts = on[:, 0].any(-1).view(b, -1, STEPS_PER_BAR).sum(-1)
    if with_rhythm:
        pitch, kind = pin_rhythm(out, rhythm, open_pixels)
        assert torch.equal(on[:, 0].any(-1), kind == START)
    else:
        assert torch.all(starts >= 2)


@pytest.fixture(scope="module")
def combined():
    from fgg.generate import Generator

    return Generator.from_checkpoint("combined-small", "cpu", "fp32")


def test_a_generated_melody_follows_the_rhythm_asked_for_inside_its_register(combined):
    result = combined.generate("C G | Am F", melody_rhythm="q-e-e-h", steps=4, seed=3)
    notes = roll_to_notes(result.melody)
    bar = [(0, 4), (4, 6), (6, 8), (8, 16)]  # quarter, eighth, eighth, half
    expected = [(b * STEPS_PER_BAR + s, b * STEPS_PER_BAR + e) for b in range(4) for s, e in bar]
    assert [(int(s), int(e)) for s, e, _ in notes] == expected
    assert all(DEFAULT_REGISTER[0] <= p <= DEFAULT_REGISTER[1] for p in notes[:, 2])
    assert all(result.allowed[s, p % 12] for s, _, p in notes)  # FGG's guarantee holds too


def test_a_free_melody_has_a_note_in_every_bar_one_at_a_time(combined):
    for seed in range(3):
        result = combined.generate("C | F | G | C | Am | F | G | C", melody_rhythm="free", steps=4, seed=seed)
        notes = roll_to_notes(result.melody)
        assert set(notes[:, 0] // STEPS_PER_BAR) == set(range(8))
        sounding = np.zeros(result.melody.shape[1], dtype=int)
        for s, e, _ in notes:
            sounding[s:e] += 1
        assert sounding.max() == 1


def test_melody_shape_inputs_are_checked_and_named():
    from fgg.checks import InputError
    from fgg.inputs import resolve_spec

    with pytest.raises(InputError, match="does not write the melody"):
        resolve_spec("C", melody_rhythm="free")
    with pytest.raises(InputError, match="whole bars of 16") as err:
        resolve_spec("C", melody_rhythm="x-x", mode="melody+accompaniment")
    assert err.value.parameter == "melody_rhythm"
    with pytest.raises(InputError, match="melody_register"):
        resolve_spec("C", melody_rhythm="free", melody_register=(60, 65), mode="melody+accompaniment")
    spec = resolve_spec("C G", melody_rhythm="q-q-q-q", mode="melody+accompaniment", bars=8)
    assert spec.melody_shape is not None and spec.melody_shape.rhythm.shape == (8 * STEPS_PER_BAR,)


def test_the_default_melody_rhythm_suits_the_accompaniment_and_is_off_where_no_melody_is_written():
    from fgg.inputs import RHYTHM_PATTERNS, resolve_spec
    from fgg.melody_rhythms import breathe, suited_rhythm

    spec = resolve_spec("C G", mode="melody+accompaniment", rhythm="block_quarters", bars=4)
    chosen, _ = suited_rhythm(np.array(RHYTHM_PATTERNS["block_quarters"]))
    np.testing.assert_array_equal(spec.melody_shape.rhythm, np.resize(breathe(chosen.symbols), 64))
    assert spec.melody_shape.rhythm[31] == REST  # each two-bar phrase ends with a breath
    np.testing.assert_array_equal(spec.melody_shape.chord_tones, spec.progression.chroma > 0)
    assert resolve_spec("C G").melody_shape is None  # the accompaniment mode writes no melody
    assert resolve_spec("C G", mode="melody+accompaniment", melody_rhythm="off").melody_shape is None


def test_notes_on_beats_1_and_3_start_on_a_chord_tone_where_one_is_open():
    open_pixels = torch.ones(1, 32, N_PITCHES, dtype=torch.bool)
    tones = torch.zeros(1, 32, 12, dtype=torch.bool)
    tones[0, :16, [0, 4, 7]] = True  # C major in bar 1; bar 2 has no chord
    open_pixels[0, 8] = False
    open_pixels[0, 8, 62 - LOWEST_PITCH] = True  # beat 3 of bar 1: only D4 is open (no chord tone)
    starts = strong_beat_starts(open_pixels, tones)
    pitch_classes = {(p + LOWEST_PITCH) % 12 for p in torch.nonzero(starts[0, 0]).flatten().tolist()}
    assert pitch_classes == {0, 4, 7}  # beat 1: the chord's tones only
    assert starts[0, 4].all() and starts[0, 16].all()  # beat 2, and a strong beat without a chord: all open
    assert torch.equal(starts[0, 8], open_pixels[0, 8])  # no tone open: the pitch guarantee first


def test_a_rhythm_pinned_with_strong_beat_tones_starts_there_on_the_chord():
    x0 = torch.rand(1, 2, 16, N_PITCHES, generator=torch.Generator().manual_seed(0))
    rhythm = torch.tensor([[START, HOLD, START, HOLD] * 4])  # eighths
    tones = torch.zeros(1, 16, 12, dtype=torch.bool)
    tones[..., [2, 5, 9]] = True  # D minor
    open_pixels = torch.ones(1, 16, N_PITCHES, dtype=torch.bool)
    pitch, kind = pin_rhythm(x0, rhythm, open_pixels, start_pixels=strong_beat_starts(open_pixels, tones))
    assert all((int(pitch[0, s]) + LOWEST_PITCH) % 12 in (2, 5, 9) for s in (0, 8))
    assert (kind == rhythm).all()


def test_a_written_melody_with_silent_bars_is_reported():
    from fgg.generate import silent_bars_warning
    from fgg.pianoroll import notes_to_roll

    melody = notes_to_roll(np.array([[0, 4, 72], [40, 44, 74]]), 4 * STEPS_PER_BAR)  # bars 1 and 3
    assert silent_bars_warning(melody) == [
        "the melody is silent in bars 2, 4: a melody rhythm (auto, free or a rhythm) gives every bar a note"
    ]
    assert silent_bars_warning(notes_to_roll(np.array([[0, 64, 72]]), 64)) == []
