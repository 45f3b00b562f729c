"""Melody statistics on hand-made rolls whose answers are known."""

import json
import math

import numpy as np

from eval.melody_metrics import (
    below_accompaniment_share,
    longest_run_without_rest,
    melody_statistics,
    pitch_class_entropy,
    pitch_class_share,
    silent_bar_share,
    strong_beat_chord_tone_share,
)
from fgg.pianoroll import notes_to_roll

C4, D4, E4, G4, B4 = 60, 62, 64, 67, 71


def roll(*notes, steps=64):
    return notes_to_roll(np.array(notes, dtype=np.int64).reshape(-1, 3), steps)


def test_pitch_class_entropy():
    assert pitch_class_entropy(roll()) == 0.0
    assert pitch_class_entropy(roll((0, 4, C4), (4, 8, C4 + 12))) == 0.0  # octaves: one pitch class
    assert math.isclose(pitch_class_entropy(roll((0, 4, C4), (4, 8, D4))), 1.0)
    all_twelve = roll(*[(4 * i, 4 * i + 4, C4 + i) for i in range(12)])
    assert math.isclose(pitch_class_entropy(all_twelve), math.log2(12))


def test_longest_run_without_rest():
    assert longest_run_without_rest(roll()) == 0
    assert longest_run_without_rest(roll((0, 4, C4), (4, 10, D4), (12, 14, E4))) == 10  # 0-9, rest at 10-11
    assert longest_run_without_rest(roll((0, 64, C4))) == 64


def test_strong_beat_chord_tone_share():
    chroma = np.zeros((64, 12), dtype=np.uint8)
    chroma[:32, [0, 4, 7]] = 1  # C major for bars 1-2, no chord after
    notes = roll((0, 2, C4), (8, 10, D4), (4, 6, D4), (16, 18, G4), (32, 34, B4))
    # strong-beat onsets under a chord: step 0 (C, tone), 8 (D, not), 16 (G, tone); step 4 is
    # a weak beat, step 32 has no chord
    assert math.isclose(strong_beat_chord_tone_share(notes, chroma), 2 / 3)
    assert math.isnan(strong_beat_chord_tone_share(roll((4, 6, C4)), chroma))


def test_pitch_class_share_and_statistics():
    notes = roll((0, 4, D4), (4, 8, B4), (8, 12, B4 - 12), (12, 16, E4))
    assert pitch_class_share(notes, [11]) == 0.5  # B, D Dorian's characteristic degree
    assert math.isnan(pitch_class_share(roll(), [11]))
    stats = melody_statistics(notes, roll((0, 16, E4)), np.zeros((64, 12), dtype=np.uint8))
    assert stats["melody_notes"] == 4 and stats["melody_range"] == B4 - (B4 - 12)
    assert stats["melody_longest_run"] == 16 and math.isnan(stats["melody_strong_beat_chord_tones"])
    assert stats["melody_silent_bars"] == 0.75  # bars 2-4 are silent
    assert stats["melody_below_accompaniment"] == 0.5  # D4 and B3 under E4; B4, E4 not


def test_style_check_counts_scale_and_characteristic_notes(tmp_path):
    """With a (random, tiny) melody+accompaniment model: FGG leaves no note outside each
    style's strict scale; the table has a row per style × FGG."""
    import torch

    from eval.style_check import check, table
    from fgg.generate import Generator
    from fgg.model import UNet, model_config
    from fgg.styles import STYLES

    torch.manual_seed(0)
    rows = check(Generator(UNet(model_config("tiny", "melody+accompaniment"))), pieces=2, bars=4)
    assert len(rows) == len(STYLES) * 2 * 2 and (rows.notes > 0).all()
    assert (rows[rows.fgg].outside_scale == 0).all() and (rows[~rows.fgg].outside_scale > 0).any()
    text = table(rows)
    assert text.count("\n") == 1 + len(STYLES) * 2 and "D Dorian (B) | on | 0.0 % ± 0.0" in text


def test_combined_mode_evaluation_end_to_end(tmp_path):
    """eval.run --mode melody+accompaniment with a tiny model of that mode: every system
    scored on every segment, FGG leaves no out-of-key step in either track."""
    import pandas as pd
    import torch

    from eval.run import main
    from fgg.checkpoint import save_model
    from fgg.model import UNet, model_config

    torch.manual_seed(0)
    save_model(tmp_path / "m.safetensors", UNet(model_config("tiny", "melody+accompaniment")))
    assert (
        main(
            [
                "--mode",
                "melody+accompaniment",
                "--checkpoint",
                str(tmp_path / "m.safetensors"),
                "--segments",
                "3",
                "--out",
                str(tmp_path / "run"),
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    per_sample = pd.read_csv(tmp_path / "run" / "per_sample.csv")
    systems = ("fgg", "no_fgg", "fgg_melody", "fgg_melody_rhythm", "fgg_melody_auto", "ground_truth")
    assert per_sample.groupby("system").size().to_dict() == dict.fromkeys(systems, 3)
    guided = per_sample[per_sample.system.str.startswith("fgg")]
    assert (guided.out_of_key_rate == 0).all() and (guided.out_of_key_rate_melody == 0).all()
    # the melody's shape: a note in every bar it asks one for, inside the register (MIDI 65-77),
    # a chord tone at every start on beats 1 and 3
    shaped = per_sample[per_sample.system.isin(["fgg_melody", "fgg_melody_auto"])]
    assert (shaped.melody_silent_bars == 0).all() and (shaped.melody_range <= 77 - 65).all()
    assert (shaped.melody_strong_beat_chord_tones.dropna() == 1).all()
    by_system = per_sample.set_index("segment").groupby("system")
    truth, own = by_system.get_group("ground_truth"), by_system.get_group("fgg_melody_rhythm")
    assert (own.melody_notes <= truth.melody_notes).all()  # the segment's rhythm, notes cut only at chord changes
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["cfg_active"] is False  # chords alone are the null condition
    summary = pd.read_csv(tmp_path / "run" / "summary.csv").set_index("system")
    assert summary.loc["ground_truth", "chord_similarity_full"] > 0.99
    # the same outputs as an accompaniment run: rolls to resume from, MIDI with both tracks, a report
    assert (tmp_path / "run" / "rolls" / "fgg_seed0.npz").is_file() and (tmp_path / "run" / "report.html").is_file()
    midi = sorted((tmp_path / "run" / "midi").glob("*.mid"))
    assert len(midi) == 3 * len(systems)
    import pretty_midi

    assert [i.name for i in pretty_midi.PrettyMIDI(str(midi[0])).instruments] == ["melody", "accompaniment"]
    assert 0 < summary.loc["ground_truth", "melody_pitch_class_entropy"] <= np.log2(12)
    from eval.table import full_table, paired_table

    full = full_table(summary)  # the combined mode's own columns, not the accompaniment runs'
    assert "out-of-key melody" in full and "chord tones on strong beats" in full and "groove" not in full
    assert full.count("\n") == 1 + len(systems)  # header, rule, a row per system
    paired = paired_table(per_sample, "fgg")
    assert "| `no_fgg` | " in paired and "chord similarity (smg)" not in paired
    assert (
        main(
            ["--mode", "melody+accompaniment", "--model", "small", "--segments", "1", "--out", str(tmp_path / "wrong")]
        )
        == 2
    )  # an accompaniment model is refused
    wrong_way = ["--checkpoint", str(tmp_path / "m.safetensors"), "--systems", "fgg", "--segments", "1"]
    assert main([*wrong_way, "--out", str(tmp_path / "other")]) == 2  # and the other way round
    foreign = ["--mode", "melody+accompaniment", "--checkpoint", str(tmp_path / "m.safetensors"), "--segments", "1"]
    assert main([*foreign, "--systems", "rule_based", "--out", str(tmp_path / "foreign")]) == 2  # not its system


def test_silent_bar_share_counts_bars_where_nothing_sounds():
    assert silent_bar_share(roll()) == 1.0
    assert silent_bar_share(roll((0, 4, C4), (40, 44, D4))) == 0.5  # bars 1 and 3 of 4
    assert silent_bar_share(roll((12, 20, C4), (32, 64, D4))) == 0.0  # a note held across the bar line counts


def test_below_accompaniment_share_compares_the_tops_where_both_sound():
    melody = roll((0, 8, G4), (8, 16, C4))
    accompaniment = roll((0, 16, E4), (0, 16, C4 - 12), (16, 20, B4))
    assert below_accompaniment_share(melody, accompaniment) == 0.5  # above E4 for 8 steps, below for 8
    assert math.isnan(below_accompaniment_share(melody, roll((16, 20, C4))))  # never together
