"""The committed artefacts: the trained checkpoints, their training logs, the evaluation runs."""

import csv
import hashlib
import json
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fgg.checkpoint import DEFAULT_MODEL, REPO_ROOT, SHIPPED_MODELS
from fgg.generate import Generator

EVAL_DIR = REPO_ROOT / "assets" / "eval"
PAPER_SHA256 = "be9d49aca25323e9b9b6fdfc835b639124573ce34a7b25a83b938c04d0c82c4b"  # ../shared/checkpoints/README.md
PRESETS = {
    "paper": ("paper", 26_624_514),
    "small": ("small", 2_688_466),
    "combined-paper": ("paper", 26_625_668),
    "combined-small": ("small", 2_688_756),
}
EVALUATED_MODELS = ("paper", "small")  # committed runs under assets/eval/<model>/
SEGMENTS = {"paper": 1709, "small": 400}  # paper: every validation segment; small: 400 of them


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_checkpoint_is_fp16_and_trained_here(name):
    path = SHIPPED_MODELS[name]
    assert path.stat().st_size < 60 * 2**20
    weights = load_file(str(path))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert sum(v.numel() for v in weights.values()) == PRESETS[name][1]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["trained_by"] == "python -m fgg.train" and meta["preset"] == PRESETS[name][0]
    with open(path.with_name(f"fgg-{name}.log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "train_loss", "valid_loss", "seconds", "samples_per_s"]
    assert int(rows[-1]["step"]) == meta["train_steps"]
    valid = [float(r["valid_loss"]) for r in rows if r["valid_loss"]]
    assert valid[-1] < valid[0] and abs(valid[-1] - meta["valid_loss"]) < 1e-4


def test_paper_checkpoint_is_the_shared_one_and_the_default():
    digest = hashlib.sha256(SHIPPED_MODELS["paper"].read_bytes()).hexdigest()
    assert digest == PAPER_SHA256 and DEFAULT_MODEL == "paper"


def test_shipped_checkpoint_generates_in_key():
    from fgg.generate import (
        generate,  # the README's one-liner, on the default (paper) model
    )

    result = generate("Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8, rhythm="syncopated_pop", seed=1)
    assert result.out_of_key_notes == 0 and len(result.notes) > 0
    assert result.accompaniment.shape == (2, 128, 64)
    again = Generator.from_checkpoint("paper", "cpu").generate(
        "Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8, rhythm="syncopated_pop", seed=1
    )
    np.testing.assert_array_equal(again.accompaniment, result.accompaniment)
    small = generate("Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8, model="small", seed=1)
    assert small.out_of_key_notes == 0 and small.n_bars == 8


@pytest.mark.parametrize("name", EVALUATED_MODELS)
def test_committed_evaluation_covers_its_segments_and_every_system(name):
    from fgg.modes import ACCOMPANIMENT

    folder = EVAL_DIR / name
    per_sample = pd.read_csv(folder / "per_sample.csv")
    summary = pd.read_csv(folder / "summary.csv").set_index("system")
    assert json.loads((folder / "run.json").read_text())["model"] == name
    assert set(per_sample.system) == set(ACCOMPANIMENT.systems) == set(summary.index)
    segments = {system: set(part.segment) for system, part in per_sample.groupby("system")}
    assert len(segments["fgg"]) == SEGMENTS[name] and all(s == segments["fgg"] for s in segments.values())
    for system in ("fgg", "null_rhythm", "last_step_remove", "last_step_round", "inpaint"):  # the guarantee
        assert (per_sample[per_sample.system == system].out_of_key_rate == 0).all(), system
    assert summary.loc["no_fgg", "out_of_key_rate"] > 0
    for column in ("out_of_key_rate_paper_table", "chord_similarity_full", "key_fixes_per_note"):
        assert f"{column}_ci95" in summary, column
    assert summary.loc["ground_truth", "chord_similarity_full"] > 0.99
    for file in ("report.html", "out_of_key_pitch_classes.csv"):
        assert (folder / file).is_file(), file


def test_both_models_are_evaluated_on_the_same_segments():
    """small's 400 segments are among paper's (all 1,709), and its numbers on them are the
    same rows: the side-by-side table compares like with like."""
    from eval.run import select_segments

    paper, small = (pd.read_csv(EVAL_DIR / name / "per_sample.csv") for name in EVALUATED_MODELS)
    assert set(small.segment) == set(select_segments(1709, 400)) <= set(paper.segment)
    assert json.loads((EVAL_DIR / "paper" / "run.json").read_text())["segments"] == 1709


def test_committed_strength_curve_is_graded_and_ends_at_zero_with_and_without_rhythm_forcing():
    curve = pd.read_csv(EVAL_DIR / "strength_curve.csv")
    assert list(curve.columns[:5]) == [
        "force_rhythm",
        "strength",
        "out_of_key_rate",
        "chord_accuracy",
        "chord_similarity_full",
    ]
    for force, part in curve.groupby("force_rhythm"):
        assert part.strength.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and (part.n >= 50).all(), force
        rates = part.out_of_key_rate.tolist()
        assert all(a > b for a, b in pairwise(rates)) and rates[-1] == 0.0, force
    by_strength = curve.pivot(index="strength", columns="force_rhythm", values="chord_accuracy")
    assert by_strength.loc[0.0, True] == by_strength.loc[0.0, False]  # strength 0 is the unguided sampler


def test_committed_run_guided_by_the_papers_table_is_in_key_by_that_table():
    folder = EVAL_DIR / "paper-table"
    run = json.loads((folder / "run.json").read_text())
    assert run["model"] == "paper" and run["scale_table"] == "paper" and run["segments"] == 400
    per_sample = pd.read_csv(folder / "per_sample.csv")
    assert set(per_sample.system) == {"fgg"} and len(per_sample) == 400
    assert (per_sample.out_of_key_rate_paper_table == 0).all()
    # the paper's table is stricter: what it guides is in key by ours too
    assert (per_sample.out_of_key_rate == 0).all()


COMBINED_MODELS = ("combined-paper", "combined-small")  # melody+accompaniment runs under assets/eval/<model>/


@pytest.mark.parametrize("name", COMBINED_MODELS)
def test_committed_melody_and_accompaniment_evaluation(name):
    """Chords alone in, 400 segments, every system of the mode; FGG leaves no out-of-key step
    in either track, the unguided model does; the melody's shape leaves no bar without melody
    in the default rhythm, spans at most its register, and starts on chord tones on beats 1 and 3."""
    from fgg.modes import MELODY_AND_ACCOMPANIMENT

    folder = EVAL_DIR / name
    run = json.loads((folder / "run.json").read_text())
    assert run["model"] == name and run["mode"] == "melody+accompaniment" and run["segments"] == 400
    assert run["cfg_active"] is False  # chords alone: the condition is the null condition
    per_sample = pd.read_csv(folder / "per_sample.csv")
    assert per_sample.groupby("system").size().to_dict() == dict.fromkeys(MELODY_AND_ACCOMPANIMENT.systems, 400)
    system = dict(list(per_sample.groupby("system")))
    for guided in ("fgg", "fgg_melody", "fgg_melody_rhythm", "fgg_melody_auto"):
        assert (system[guided].out_of_key_rate == 0).all(), guided
    assert system["no_fgg"].out_of_key_rate.mean() > 0 and (system["fgg"].melody_notes > 0).mean() > 0.9
    for shaped in ("fgg_melody", "fgg_melody_auto"):
        assert (system[shaped].melody_silent_bars == 0).all() and (system[shaped].melody_range <= 12).all()
        assert (system[shaped].melody_strong_beat_chord_tones.dropna() == 1).all()
    summary = pd.read_csv(folder / "summary.csv").set_index("system")
    assert summary.loc["ground_truth", "chord_similarity_full"] > 0.99


def test_committed_style_check():
    """20 pieces per style with FGG on and off (combined-paper): none outside the scale with FGG."""
    from fgg.styles import STYLES

    record = json.loads((EVAL_DIR / "style_check.json").read_text())
    assert record["checkpoint"] == "combined-paper" and record["pieces"] == 20 and record["bars"] == 8
    rows = pd.read_csv(EVAL_DIR / "style_check.csv")
    assert rows.groupby(["style", "fgg"]).size().to_dict() == {(s, f): 20 for s in STYLES for f in (False, True)}
    assert (rows[rows.fgg].outside_scale == 0).all() and (rows.notes > 0).all()


def test_melody_and_accompaniment_done_when_command(tmp_path):
    """The issue's command: two non-empty instruments, no note outside D Dorian, offline."""
    import pretty_midi

    from fgg.generate import main

    out = tmp_path / "x.mid"
    args = ["--mode", "melody+accompaniment", "--chords", "Dm | G | Dm | G", "--scale", "D dorian", "--bars", "8"]
    assert main([*args, "--out", str(out)]) == 0
    instruments = {i.name: i.notes for i in pretty_midi.PrettyMIDI(str(out)).instruments}
    assert set(instruments) == {"melody", "accompaniment"} and all(instruments.values())
    dorian = {2, 4, 5, 7, 9, 11, 0}
    assert all(n.pitch % 12 in dorian for notes in instruments.values() for n in notes)


def test_generate_picks_the_default_model_of_each_mode():
    from fgg.checkpoint import shipped
    from fgg.generate import generate
    from fgg.modes import MODES

    assert shipped("melody+accompaniment") == ["combined-paper", "combined-small"]
    assert {m.name: m.default_model for m in MODES.values()} == {
        "accompaniment": "paper",
        "melody+accompaniment": "combined-paper",
    }
    result = generate("Dm | G", mode="melody+accompaniment", scale="D dorian", scale_mode="strict", seed=3)
    assert result.melody_generated and result.melody.any() and result.out_of_key_notes == 0
    with pytest.raises(ValueError, match="mode 'melody\\+accompaniment' needs a model of that mode; small generates"):
        generate("Dm | G", model="small", mode="melody+accompaniment")
    with pytest.raises(ValueError, match="unknown mode 'duet'"):
        generate("Dm | G", mode="duet")


def test_the_fast_sampler_is_the_fewest_steps_within_the_cis_of_the_papers():
    """assets/eval/steps_curve.csv (paper, 400 segments): DPM-Solver++(2M) at 4-8 steps against
    10 DDIM steps, per segment; the app's "fast" sampler is the fewest steps whose chord metrics
    stay within the CIs, never out of key."""
    from demo.request import DEFAULT_SAMPLER, SAMPLERS

    curve = pd.read_csv(EVAL_DIR / "steps_curve.csv")
    assert curve[["solver", "steps"]].values.tolist()[0] == ["ddim", 10] and (curve.n == 400).all()
    assert (curve.out_of_key_rate == 0).all()
    within = [
        (row.solver, int(row.steps))
        for row in curve.itertuples()
        if all(
            abs(getattr(row, f"{m}_diff")) <= getattr(row, f"{m}_diff_ci95")
            for m in ("chord_accuracy", "chord_similarity_full")
        )
        and row.solver != "ddim"
    ]
    assert SAMPLERS["fast"] == min(within, key=lambda config: config[1]) and DEFAULT_SAMPLER == "fast"
