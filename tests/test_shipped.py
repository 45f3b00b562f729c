"""The committed artefacts: the trained checkpoints, their training logs, the evaluation runs."""
import csv
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fgg.checkpoint import DEFAULT_MODEL, REPO_ROOT, SHIPPED_MODELS
from fgg.generate import Generator

EVAL_DIR = REPO_ROOT / "assets" / "eval"
PAPER_SHA256 = "be9d49aca25323e9b9b6fdfc835b639124573ce34a7b25a83b938c04d0c82c4b"  # ../shared/checkpoints/README.md
PRESETS = {"paper": ("paper", 26_624_514), "small": ("small", 2_688_466)}


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
    from fgg.generate import generate  # the README's one-liner, on the default (paper) model

    result = generate("Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8, rhythm="syncopated_pop", seed=1)
    assert result.out_of_key_notes == 0 and len(result.notes) > 0
    assert result.accompaniment.shape == (2, 128, 64)
    again = Generator.from_checkpoint("paper", "cpu").generate("Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8,
                                                              rhythm="syncopated_pop", seed=1)
    np.testing.assert_array_equal(again.accompaniment, result.accompaniment)
    small = generate("Dm7 G7 | Cmaj7 | Am7 D7 | G", bars=8, model="small", seed=1)
    assert small.out_of_key_notes == 0 and small.n_bars == 8
