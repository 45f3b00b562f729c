"""The committed artefacts: the trained checkpoint, its training log, the evaluation run."""
import csv
import json

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from fgg.checkpoint import DEFAULT_CHECKPOINT
from fgg.generate import Generator

EVAL_DIR = DEFAULT_CHECKPOINT.parent.parent / "eval"


def test_shipped_checkpoint_is_small_fp16_and_trained_here():
    assert DEFAULT_CHECKPOINT.stat().st_size < 30 * 2**20
    weights = load_file(str(DEFAULT_CHECKPOINT))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    meta = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert meta["trained_by"] == "python -m fgg.train" and meta["preset"] == "small" and meta["train_steps"] > 0
    with open(DEFAULT_CHECKPOINT.with_name("fgg-small.log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "train_loss", "valid_loss", "seconds", "samples_per_s"]
    assert int(rows[-1]["step"]) == meta["train_steps"]
    valid = [float(r["valid_loss"]) for r in rows if r["valid_loss"]]
    assert valid[-1] < valid[0] and abs(valid[-1] - meta["valid_loss"]) < 1e-4


def test_shipped_checkpoint_generates_in_key():
    from fgg.generate import generate  # the README's one-liner, on the shipped checkpoint

    result = generate("Dm7 | G7 | Cmaj7 | %", bars=8, rhythm="syncopated_pop", seed=1)
    assert result.out_of_key_notes == 0 and len(result.notes) > 0
    assert result.accompaniment.shape == (2, 128, 64)
    again = Generator.from_checkpoint(DEFAULT_CHECKPOINT, "cpu").generate("Dm7 | G7 | Cmaj7 | %", bars=8,
                                                                          rhythm="syncopated_pop", seed=1)
    np.testing.assert_array_equal(again.accompaniment, result.accompaniment)


def test_committed_evaluation_covers_every_segment_and_system():
    from eval.baselines import SYSTEMS
    from fgg.data import load_valid_segments

    per_sample = pd.read_csv(EVAL_DIR / "per_sample.csv")
    summary = pd.read_csv(EVAL_DIR / "summary.csv").set_index("system")
    n_segments = len(load_valid_segments()["song_id"])
    assert set(per_sample.system) == set(SYSTEMS) == set(summary.index)
    for system, part in per_sample.groupby("system"):
        assert part.segment.nunique() == n_segments, system
    # the guarantee, on every validation segment
    for system in ("fgg", "null_rhythm", "last_step_remove", "last_step_round", "inpaint"):
        assert (per_sample[per_sample.system == system].out_of_key_rate == 0).all(), system
    assert summary.loc["no_fgg", "out_of_key_rate"] > 0
    # the last-step fixes reach 0 too, but have to change more wrong notes at the end than FGG,
    # whose guidance already steered the whole trajectory into key
    for system in ("last_step_remove", "last_step_round"):
        assert summary.loc[system, "key_fixes"] > summary.loc["fgg", "key_fixes"], system
    assert summary.loc["ground_truth", "chord_accuracy"] > 0.99  # < 1 only for silent segments (smg: 0 chords -> 0)
    for file in ("report.html", "out_of_key_pitch_classes.csv", "README.md"):
        assert (EVAL_DIR / file).is_file(), file
