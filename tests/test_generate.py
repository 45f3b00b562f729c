import json

import numpy as np
import pretty_midi
import pytest
import torch

from fgg import generate as gen_module
from fgg.checks import InputError
from fgg.diffusion import Schedule
from fgg.generate import Generator
from fgg.inputs import RHYTHM_PATTERNS, GenerationSpec, InputLimits, resolve_spec, rhythm_counts
from fgg.model import PRESETS, UNet
from fgg.modes import ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT
from fgg.pianoroll import (
    NOTE_THRESHOLD,
    midi_to_notes,
    notes_to_roll,
    out_of_key_notes,
    roll_to_notes,
)


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(UNet(PRESETS["tiny"]))


class MelodyCopyModel(torch.nn.Module):
    """Analytic ε-model whose clean prediction is the melody condition: lets tests check
    window assembly against a known answer."""

    def __init__(self):
        super().__init__()
        self.schedule = Schedule.paper()

    def forward(self, x, t):
        x_t, target = x[:, :2], x[:, 4:6]
        return self.schedule.eps_from_x0(x_t, target, t)


def test_generate_result(tiny_generator):
    r = tiny_generator.generate("C G | Am F", bars=4, rhythm="eighth_arpeggio", tempo=120, seed=1)
    assert r.accompaniment.shape == (2, 64, 64) and r.accompaniment.dtype == bool
    assert r.out_of_key_notes == 0
    assert [i.name for i in r.midi.instruments] == ["melody", "accompaniment"]
    assert r.progression.labels[:4] == ("C:maj", "C:maj", "G:maj", "G:maj")
    assert r.progression.n_bars == 4  # 2-bar progression repeated to fill 4 bars
    notes = midi_to_notes(r.midi, tempo=120, tracks=["accompaniment"])
    np.testing.assert_array_equal(notes, r.notes)
    # exactly the requested onsets per step (FGG rhythm projection)
    counts = rhythm_counts("eighth_arpeggio", 64)
    np.testing.assert_array_equal(r.accompaniment[0].sum(-1), counts)


def test_seed_reproducibility(tiny_generator):
    a = tiny_generator.generate("Am | F | C | G", seed=5)
    b = tiny_generator.generate("Am | F | C | G", seed=5)
    c = tiny_generator.generate("Am | F | C | G", seed=6)
    assert np.array_equal(a.accompaniment, b.accompaniment)
    assert not np.array_equal(a.accompaniment, c.accompaniment)


def test_fgg_off_and_user_scale(tiny_generator):
    off = tiny_generator.generate("C G | Am F", fgg=False, seed=2, cfg_scale=1.0)
    assert off.out_of_key_notes > 0  # an untrained model plays anything
    dorian = tiny_generator.generate("Dm7 | G", scale="dorian", seed=2)
    assert dorian.out_of_key_notes == 0
    pcs = {p % 12 for _, _, p in dorian.notes}
    assert pcs <= {2, 4, 5, 7, 9, 11, 0}
    penta = tiny_generator.generate("C", scale="A pentatonic", scale_mode="strict", seed=2)
    assert {p % 12 for _, _, p in penta.notes} <= {9, 11, 1, 4, 6}
    with_chord = tiny_generator.generate("C", scale="A pentatonic", seed=2)
    assert {p % 12 for _, _, p in with_chord.notes} <= {9, 11, 1, 4, 6, 0, 7}  # + the C chord's own tones


def test_bars_default_to_the_progression_and_cuts_are_reported(tiny_generator):
    eight = "Am | F | C | G | Am | F | E7 | Am"
    r = tiny_generator.generate(eight)
    assert r.n_bars == 8 and r.progression.n_bars == 8 and r.warnings == []
    assert tiny_generator.generate("C G | Am F").n_bars == 4  # short progressions still fill 4 bars
    cut = tiny_generator.generate(eight, bars=4)
    assert cut.n_bars == 4 and len(cut.warnings) == 1 and "8 bars" in cut.warnings[0]


def test_strength_zero_is_unguided_and_strength_grades(tiny_generator):
    unguided = tiny_generator.generate("C G | Am F", fgg=False, seed=7, rhythm="eighth_arpeggio")
    zero = tiny_generator.generate("C G | Am F", strength=0.0, seed=7, rhythm="eighth_arpeggio")
    np.testing.assert_array_equal(zero.accompaniment, unguided.accompaniment)
    wrong = [
        tiny_generator.generate("C G | Am F", strength=s, seed=7, rhythm="eighth_arpeggio").out_of_key_notes
        for s in (0.0, 0.5, 1.0)
    ]
    assert wrong[0] > 0 and wrong[2] == 0  # an untrained model plays anything; full strength fixes all


def test_rhythm_forcing_is_its_own_control(tiny_generator):
    """With FGG on, ``force_rhythm=False`` keeps the pitch projection and drops the onset counts."""
    forced = tiny_generator.generate("C G | Am F", seed=7, rhythm="eighth_arpeggio")
    free = tiny_generator.generate("C G | Am F", seed=7, rhythm="eighth_arpeggio", force_rhythm=False)
    counts = rhythm_counts("eighth_arpeggio", 64)
    np.testing.assert_array_equal(forced.accompaniment[0].sum(-1), counts)
    assert not np.array_equal(free.accompaniment[0].sum(-1), counts) and free.out_of_key_notes == 0


def test_dpmpp_2m_keeps_fgg_s_guarantee_in_few_steps(tiny_generator):
    """The solver extrapolates from FGG's edited x̂₀ and returns the last one: nothing out of
    key, the rhythm exact, at 4 steps as at 10."""
    for steps in (4, 6):
        result = tiny_generator.generate("C G | Am F", solver="dpmpp_2m", steps=steps, rhythm="ballad", seed=3)
        assert result.out_of_key_notes == 0, steps
        np.testing.assert_array_equal(result.accompaniment[0].sum(-1), rhythm_counts("ballad", 64))


def test_scale_table_choice(tiny_generator):
    paper = tiny_generator.generate("Cm7 | F7", scale_table="paper", seed=3)
    assert paper.out_of_key_notes == 0
    assert not paper.allowed[0, 11] and tiny_generator.generate("Cm7 | F7", seed=3).allowed[0, 11]  # B: LT only in ours
    with pytest.raises(ValueError, match="unknown scale_table 'nope'"):
        tiny_generator.generate("C", scale_table="nope")


def test_user_scale_keeps_the_chords_unless_strict(tiny_generator):
    default = tiny_generator.generate("D | D | D | D", scale="F# dorian", seed=1)
    assert default.allowed[:, 2].all()  # D, the chord's root, is not in F# dorian but stays allowed
    strict = tiny_generator.generate("D | D | D | D", scale="F# dorian", scale_mode="strict", seed=1)
    assert not strict.allowed[:, 2].any()
    assert strict.out_of_key_notes == 0 and {p % 12 for _, _, p in strict.notes} <= {6, 8, 9, 11, 1, 3, 4}
    with pytest.raises(ValueError, match="unknown scale_mode 'loose'"):
        tiny_generator.generate("D", scale="dorian", scale_mode="loose")


def test_long_piece_first_window_is_preserved(tiny_generator):
    short = tiny_generator.generate("C G | Am F", bars=4, seed=3)
    long = tiny_generator.generate("C G | Am F", bars=12, seed=3)
    assert long.accompaniment.shape == (2, 192, 64)
    # later windows inpaint the overlap: they never rewrite what was already generated
    np.testing.assert_array_equal(long.accompaniment[0, :64], short.accompaniment[0, :64])
    np.testing.assert_array_equal(long.accompaniment[1, :64], short.accompaniment[1, :64])
    assert long.out_of_key_notes == 0


@pytest.mark.parametrize("overlap", [1, 2])
def test_long_piece_has_no_seam_artefacts(overlap):
    """Notes that cross window joins come out whole, once: with a model whose answer is
    known (copy the melody), the 10-bar result equals that answer note for note."""
    rng = np.random.default_rng(0)
    starts = np.sort(rng.choice(160 - 12, 40, replace=False))
    target = np.stack([starts, starts + rng.integers(2, 24, 40), rng.integers(48, 80, 40)], 1)
    target = np.vstack([target, [[40, 90, 60], [60, 70, 62], [100, 120, 64], [44, 52, 66]]])  # across joins
    roll = notes_to_roll(target, 160)
    g = Generator(MelodyCopyModel())
    r = g.generate("N.C.", melody=roll, bars=10, fgg=False, cfg_scale=1.0, overlap_bars=overlap)
    np.testing.assert_array_equal(r.notes, roll_to_notes(roll))


def test_progress_and_callback(tiny_generator):
    seen, progress = [], []
    tiny_generator.generate(
        "C",
        bars=7,
        callback=lambda i, t, x, x0: seen.append((i, t)),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert len(seen) == 20 and seen[0] == (0, 999) and seen[9] == (9, 13) and seen[10] == (10, 999)
    assert progress[-1] == (20, 20)


def test_bad_inputs(tiny_generator, tmp_path):
    with pytest.raises(ValueError, match="bar 2: unrecognised chord symbol 'Hm'"):
        tiny_generator.generate("C | Hm")
    with pytest.raises(ValueError, match="bars must be a whole number from 4 to 64"):
        tiny_generator.generate("C", bars=65)
    with pytest.raises(ValueError, match="unknown rhythm pattern 'polka'"):
        tiny_generator.generate("C", rhythm="polka")
    with pytest.raises(ValueError, match="unknown scale 'lydianish'"):
        tiny_generator.generate("C", scale="lydianish")
    with pytest.raises(ValueError, match="strength must be a number from 0 to 1"):
        tiny_generator.generate("C", strength=1.2)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="cannot read melody MIDI"):
        tiny_generator.generate("C", melody=str(bad))
    assert set(RHYTHM_PATTERNS) >= {"block_quarters", "eighth_arpeggio", "syncopated_pop"}


def test_melody_from_midi(tiny_generator, tmp_path):
    midi = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(0, name="Melody")
    step = 60 / 100 / 4
    for i, pitch in enumerate([72, 74, 76, 77]):
        inst.notes.append(pretty_midi.Note(90, pitch, i * 4 * step, (i * 4 + 3) * step))
    inst.notes.append(pretty_midi.Note(90, 110, 16 * step, 20 * step))  # folded into range
    midi.instruments.append(inst)
    path = tmp_path / "melody.mid"
    midi.write(str(path))
    r = tiny_generator.generate("C", melody=str(path), tempo=100)
    assert roll_to_notes(r.melody).tolist() == [[0, 3, 72], [4, 7, 74], [8, 11, 76], [12, 15, 77], [16, 20, 86]]


def test_out_of_key_notes():
    roll = notes_to_roll(np.array([[0, 4, 60], [0, 8, 61], [4, 8, 64]]), 16)
    allowed = np.zeros((16, 12), bool)
    allowed[:, [0, 4]] = True
    allowed[6:, 0] = False  # C stops being allowed at step 6 — but the C note ended at 4
    assert out_of_key_notes(roll, allowed) == 1


def test_cli(tmp_path, capsys, monkeypatch):
    torch.manual_seed(0)
    from fgg.checkpoint import save_model

    ckpt = save_model(tmp_path / "tiny.safetensors", UNet(PRESETS["tiny"]))
    out = tmp_path / "out.mid"
    assert (
        gen_module.main(
            [
                "--chords",
                "C G | Am F",
                "--checkpoint",
                str(ckpt),
                "--bars",
                "8",
                "--out",
                str(out),
                "--scale",
                "C major",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["wrote"] == str(out) and summary["bars"] == 8 and summary["out_of_key_notes"] == 0
    assert out.is_file() and pretty_midi.PrettyMIDI(str(out)).instruments
    assert gen_module.main(["--chords", "C | Xq", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "bar 2" in capsys.readouterr().err
    # a validation segment supplies chords, melody and rhythm
    assert gen_module.main(["--segment", "7", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    seg = __import__("fgg.data", fromlist=["x"]).load_valid_segments()
    assert summary["accompaniment_notes"] == int(seg["onset_counts"][7].sum())  # rhythm enforced
    names = [i.name for i in pretty_midi.PrettyMIDI(str(out)).instruments]
    assert names == ["melody", "accompaniment"]
    assert gen_module.main(["--segment", "99999", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert NOTE_THRESHOLD == 0.5
    # rhythm forcing is a control of its own; the authors' per-step noise a sampler option
    free = ["--segment", "7", "--checkpoint", str(ckpt), "--out", str(out), "--no-force-rhythm"]
    assert gen_module.main(free + ["--noise", "one_step", "--eta", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accompaniment_notes"] != int(seg["onset_counts"][7].sum()) and summary["out_of_key_notes"] == 0


def test_a_spec_is_resolved_once_and_sampled_as_is(tiny_generator):
    spec = resolve_spec("C G | Am F", bars=6, rhythm="ballad", scale="D dorian", strength=0.5, seed=9, tempo=100)
    assert isinstance(spec, GenerationSpec) and spec.mode is ACCOMPANIMENT
    assert spec.bars == 6 and spec.n_steps == 96 and spec.progression.n_bars == 6  # fitted to the length
    assert spec.counts.shape == (96,) and spec.melody is None and spec.cfg_has_effect
    assert spec.allowed.shape == (96, 12) and spec.guide.shape == (96, 64) and spec.guide.dtype == bool
    assert spec.options.strength == 0.5 and spec.options.cfg_scale == 7.5 and spec.seed == 9
    with pytest.raises(AttributeError):
        spec.seed = 1  # frozen: what was resolved is what is sampled
    sampled = tiny_generator.sample(spec)
    again = tiny_generator.generate("C G | Am F", bars=6, rhythm="ballad", scale="D dorian", strength=0.5, seed=9)
    np.testing.assert_array_equal(sampled.accompaniment, again.accompaniment)
    assert sampled.tempo == 100.0 and sampled.progression is spec.progression


@pytest.mark.parametrize(
    "inputs, parameter",
    [
        ({"chords": "C | Hm"}, "chords"),
        ({"chords": "C" * 50, "limits": InputLimits(chord_chars=10)}, "chords"),
        ({"chords": "C", "bars": 3}, "bars"),
        ({"chords": "C", "seed": -1}, "seed"),
        ({"chords": "C", "steps": 0}, "steps"),
        ({"chords": "C", "tempo": "fast"}, "tempo"),
        ({"chords": "C", "fgg": "false"}, "fgg"),
        ({"chords": "C", "rhythm": "polka"}, "rhythm"),
        ({"chords": "C", "scale": "lydianish"}, "scale"),
        ({"chords": "C", "mode": "duet"}, "mode"),
        ({"chords": "C", "melody": np.zeros((2, 64, 64), bool), "mode": MELODY_AND_ACCOMPANIMENT}, "melody"),
        ({"chords": "C", "precision": "half"}, "precision"),
        ({"chords": "C", "overlap_bars": 4}, "overlap_bars"),
        ({"chords": "C", "solver": "euler"}, "solver"),
        ({"chords": "C", "solver": "dpmpp_2m", "eta": 0.5}, "eta"),
        ({"chords": "C", "solver": "dpmpp_2m", "steps": 1000}, "steps"),
        ({"chords": "C", "noise": "ancestral"}, "noise"),
    ],
)
def test_resolve_spec_names_the_bad_input(inputs, parameter):
    with pytest.raises(InputError) as caught:
        resolve_spec(**inputs)
    assert caught.value.parameter == parameter and str(caught.value)


def test_a_long_progression_is_cut_to_the_limit_with_a_warning():
    spec = resolve_spec(" | ".join(["C", "G"] * 20), limits=InputLimits(bars=(4, 32)))
    assert spec.bars == 32 and "only its first 32 bars" in spec.warnings[0]


def test_a_spec_of_another_mode_is_refused(tiny_generator):
    with pytest.raises(ValueError, match="needs a model of that mode"):
        tiny_generator.sample(resolve_spec("C", mode=MELODY_AND_ACCOMPANIMENT))
