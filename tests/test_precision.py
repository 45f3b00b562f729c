"""Network precision (fgg.precision): the choice of bf16, what stays fp32, and the FGG
guarantee under bf16 on every device present."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fgg import precision as P
from fgg.diffusion import Schedule
from fgg.generate import Generator
from fgg.guidance import cfg_denoiser
from fgg.model import PRESETS, UNet
from fgg.modes import ACCOMPANIMENT
from fgg.sampling import SamplingOptions, build_conditions, sample_batch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CHORDS = "C Cmaj7 | Am7 F#dim | Dm7b5 G7 | Ebaug Bbsus4 | Fm6 C/E | Dbmaj7 G7sus4 | Abm E | C"


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return UNet(PRESETS["tiny"]).eval()


def test_resolve_precision_detects_native_bf16(monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    assert P.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    assert P.resolve_precision("auto", "cpu") == "bf16"
    assert P.resolve_precision("auto", "cuda") == "fp32"  # launch-bound at batch 1 (fgg/precision.py)
    assert P.resolve_precision("fp32", "cuda") == "fp32" and P.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose one of auto, fp32, bf16"):
        P.resolve_precision("fp16", "cpu")


def test_native_bf16_detection_agrees_with_cpuinfo():
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in cpuinfo if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    if "avx512_bf16" in flags:
        assert P.cpu_has_native_bf16()
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:  # (AMX also needs the OS to enable its tiles)
        assert not P.cpu_has_native_bf16()


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_network_returns_fp32_close_to_fp32(device, tiny_model):
    model = tiny_model.to(device)
    x = torch.randn(3, 6, 64, 64, device=device)
    t = torch.tensor([0, 500, 999], device=device)
    assert P.network(model, "fp32") is model  # the reference path is untouched
    with torch.inference_mode():
        ref, low = model(x, t), P.network(model, "bf16")(x, t)
    assert low.dtype == torch.float32 and low.is_contiguous() and low.device == ref.device
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3
    with pytest.raises(ValueError, match="fp32 or bf16"):
        P.network(model, "auto")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_name, seeds", [("small", range(16)), ("paper", range(3))])
def test_bf16_keeps_fgg_guarantee(device, model_name, seeds):
    """Zero out-of-key notes under bf16 on many seeds with every chord quality, with and
    without melody/rhythm (FGG's projection and the DDIM update stay fp32)."""
    gen = Generator.from_checkpoint(model_name, device, precision="bf16")
    assert gen.precision == "bf16"
    melody = np.zeros((2, 64, 64), dtype=bool)
    melody[0, ::4, 30] = melody[1, :, 30] = True  # a repeated F#4: out of key for most chords
    for seed in seeds:
        rhythm = "sixteenth_arpeggio" if seed % 2 else None
        result = gen.generate(
            CHORDS, bars=8 if seed < 2 else 4, seed=seed, rhythm=rhythm, melody=melody if seed % 3 == 0 else None
        )
        assert result.out_of_key_notes == 0, seed
        assert len(result.notes) > 0


def test_generator_precision_default_and_override(tiny_model):
    auto = Generator(tiny_model, "cpu")
    assert auto.precision == P.resolve_precision("auto", "cpu")
    fp32 = Generator(tiny_model, "cpu", precision="fp32")
    a = fp32.generate("C G | Am F", seed=1, rhythm="ballad")
    b = auto.generate("C G | Am F", seed=1, rhythm="ballad", precision="fp32")
    np.testing.assert_array_equal(a.accompaniment, b.accompaniment)
    with pytest.raises(ValueError, match="unknown precision"):
        auto.generate("C G | Am F", precision="half")


def test_cfg_runs_one_forward_when_condition_is_null(tiny_model):
    """Chords only (no melody, no rhythm): the condition is the null condition, so CFG is the
    identity and one forward per step gives the same sample."""
    calls = []

    def counted(x, t):
        calls.append(len(x))
        return tiny_model(x, t)

    chroma = np.zeros((1, 64, 12), dtype=np.float32)
    chroma[..., [0, 4, 7]] = 1
    cond, null = build_conditions(chroma, None, None, ACCOMPANIMENT)
    schedule = Schedule.paper()
    x = torch.randn(1, 2, 64, 64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    with torch.inference_mode():
        one = cfg_denoiser(counted, schedule, cond, null, 7.5, 0.7)(x, t)
        assert calls == [1]
        eps = tiny_model(torch.cat([torch.cat([x, cond], 1), torch.cat([x, null], 1)]), torch.cat([t, t]))
        from fgg.guidance import cfg_combine

        two = schedule.x0_from_eps(x, cfg_combine(*eps.chunk(2), 7.5, 0.7), t)
    torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-5)
    counts = np.full((1, 64), 2.0, dtype=np.float32)
    cond, null = build_conditions(chroma, counts, None, ACCOMPANIMENT)  # a rhythm: both predictions run
    calls.clear()
    with torch.inference_mode():
        cfg_denoiser(counted, schedule, cond, null, 7.5, 0.7)(x, t)
    assert calls == [2]


def test_sample_batch_observes_prediction_before_fgg(tiny_model):
    chroma = np.zeros((2, 64, 12), dtype=np.float32)
    chroma[..., [0, 4, 7]] = 1
    cond, null = build_conditions(chroma, None, None, ACCOMPANIMENT)
    allowed = torch.zeros(2, 64, 64, dtype=torch.bool)
    allowed[..., ::12] = True  # only Cs allowed: FGG must edit
    seen = []
    out = sample_batch(
        tiny_model,
        Schedule.paper(),
        cond,
        null,
        allowed,
        None,
        torch.randn(2, 2, 64, 64),
        SamplingOptions(precision="fp32"),
        before_fgg=lambda x_t, x0: seen.append(x0.clone()),
    )
    assert len(seen) == 10
    assert (out[:, :, ~allowed[0]] <= 0.5).all() and (seen[-1][:, :, ~allowed[0]] > 0.5).any()
