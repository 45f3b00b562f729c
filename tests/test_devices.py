"""The whole tensor path on every device present: CPU always, CUDA where there is one
(training + resume, generation with FGG and rhythm over 12 bars, melody + accompaniment from
chords alone, every evaluation system, the app's generate and compare handlers)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from eval import metrics as M
from eval.baselines import EvalContext, SegmentBatch, run_system
from eval.melody_metrics import silent_bar_share
from fgg.data import load_valid_segments
from fgg.generate import Generator
from fgg.inputs import rhythm_counts
from fgg.model import PRESETS, UNet, model_config
from fgg.modes import ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT
from fgg.pianoroll import out_of_key_notes
from fgg.train import TrainConfig, train

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
GUARANTEED = ("fgg", "last_step_remove", "last_step_round", "inpaint", "null_rhythm", "rule_based")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return UNet(PRESETS["tiny"]).eval()


@pytest.mark.parametrize("device", DEVICES)
def test_train_two_steps_and_resume(device, pop909_dir, tmp_path):
    cfg = dict(preset="tiny", batch_size=2, log_every=1, valid_every=2, checkpoint_every=2, valid_segments=4)
    first = train(TrainConfig(steps=2, **cfg), tmp_path, device_name=device, pop909=pop909_dir)
    resumed = train(TrainConfig(steps=3, **cfg), tmp_path, resume=True, device_name=device, pop909=pop909_dir)
    assert first["step"] == 2 and resumed["step"] == 3 and np.isfinite(resumed["valid_loss"])


@pytest.mark.parametrize("device", DEVICES)
def test_generate_fgg_rhythm_long_piece(device, tiny_model):
    gen = Generator(tiny_model, device)
    r = gen.generate("C G | Am F | Dm7 G7 | C", bars=12, rhythm="eighth_arpeggio", seed=4)
    assert r.n_bars == 12 and r.out_of_key_notes == 0
    np.testing.assert_array_equal(r.accompaniment[0].sum(-1), rhythm_counts("eighth_arpeggio", 12 * 16))
    again = gen.generate("C G | Am F | Dm7 G7 | C", bars=12, rhythm="eighth_arpeggio", seed=4)
    np.testing.assert_array_equal(again.accompaniment, r.accompaniment)


@pytest.mark.parametrize("device", DEVICES)
def test_melody_and_accompaniment_from_chords_alone(device):
    torch.manual_seed(0)
    gen = Generator(UNet(model_config("tiny", "melody+accompaniment")).eval(), device)
    r = gen.generate("Dm | G | Dm | G", scale="D dorian", bars=8, rhythm="ballad", seed=1)
    assert r.melody_generated and r.melody.shape == r.accompaniment.shape == (2, 128, 64)
    assert out_of_key_notes(r.melody, r.allowed) == 0 and out_of_key_notes(r.accompaniment, r.allowed) == 0
    np.testing.assert_array_equal(r.accompaniment[0].sum(-1), rhythm_counts("ballad", 128))


@pytest.mark.parametrize("device", DEVICES)
def test_every_eval_system(device, tiny_model):
    seg = load_valid_segments()
    batch = SegmentBatch.from_segments(seg, [5, 700])
    ctx = EvalContext(tiny_model.to(device))
    for name in ACCOMPANIMENT.systems:
        output = run_system(name, batch, [1, 2], ctx)
        assert output.rolls.shape == (2, 2, 64, 64) and output.rolls.dtype == bool, name
        if name in GUARANTEED:
            assert all(M.out_of_key_rate(r, a) == 0 for r, a in zip(output.rolls, batch.allowed, strict=True)), name
    tiny_model.to("cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_every_melody_and_accompaniment_system(device):
    """The chords-only systems, the melody's shape among them, on every device: every bar of a
    shaped melody sounds, and nothing is out of key."""
    torch.manual_seed(0)
    model = UNet(model_config("tiny", MELODY_AND_ACCOMPANIMENT.name)).eval().to(device)
    mode = MELODY_AND_ACCOMPANIMENT
    batch = SegmentBatch.from_segments(load_valid_segments(), [5, 700], mode=mode, rhythm=False)
    for name in mode.systems:
        rolls = run_system(name, batch, [1, 2], EvalContext(model)).rolls
        assert rolls.shape == (2, 4, 64, 64) and rolls.dtype == bool, name
        if name.startswith("fgg"):
            tracks = [(r[c : c + 2], a) for r, a in zip(rolls, batch.allowed, strict=True) for c in (0, 2)]
            assert all(M.out_of_key_rate(track, a) == 0 for track, a in tracks), name
        if name in ("fgg_melody", "fgg_melody_auto"):
            assert all(silent_bar_share(r[:2]) == 0 for r in rolls), name


@pytest.mark.parametrize("device", DEVICES)
def test_app_handlers(device, tiny_model, tmp_path):
    from demo.controller import Controller
    from demo.request import AppRequest, CompareRequest

    controller = Controller({"paper": Generator(tiny_model, device)})
    result = controller.generate(AppRequest("Am F | C G", rhythm="ballad", seed=2))
    assert result.metrics["out_of_key_notes"] == 0 and Path(result.wav).read_bytes()[:4] == b"RIFF"
    table = controller.compare(CompareRequest("Am F | C G", system_a="inpaint", system_b="null_rhythm", seed=2)).table
    assert table.iloc[0, 1] == 0.0 and table.iloc[0, 2] == 0.0  # out_of_key_rate of A and B
    tiny_model.to("cpu")
