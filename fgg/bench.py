"""Speed benchmark (``python -m fgg.bench``): prints one JSON object of medians.

Measures, for the shipped checkpoint (or ``--preset`` with random weights): parameters,
GFLOP per forward (batch 1); a 4-bar sample with FGG (batch 1, 10 DDIM steps, CFG on with
melody + rhythm so both predictions run) in fp32 and in bf16, interleaved in one run so
machine noise hits both alike, with the out-of-key notes of each; the same without FGG; a
chords-only sample (the condition is the null condition, so CFG needs one forward, not
two); a 32-bar piece; the network's forward in each variant of the fast path (fp32, bf16
autocast, bf16 + channels-last, optionally ``torch.compile``); this machine's bf16 matmul
peak and the floor it puts under the 4-bar time; training throughput (``fgg.train``'s own
step: samples/s). ``--train`` measures training only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from fgg.checkpoint import (
    DEFAULT_MODEL,
    load_model,
    resolve_checkpoint,
    resolve_device,
    shipped,
)
from fgg.generate import Generator
from fgg.model import PRESETS, UNet, count_parameters, forward_gflops
from fgg.modes import ACCOMPANIMENT
from fgg.pianoroll import N_PITCHES, SEGMENT_STEPS
from fgg.precision import device_description, network
from fgg.train import TrainConfig, Trainer, diffusion_loss, lr_at

CHORDS = "C G | Am F | Dm7 G7 | C"


def _median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _interleaved_medians(fns, repeats: int, warmup: int = 2) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + repeats):
        for fn, bucket in zip(fns, times, strict=True):
            began = time.perf_counter()
            fn()
            if i >= warmup:
                bucket.append(time.perf_counter() - began)
    return [statistics.median(t) for t in times]


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.bfloat16, n: int = 2048) -> float:
    """Measured dense matmul rate (GFLOP/s): what this machine can do at best in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def mm():
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / _median_seconds(mm, 7) / 1e9


def forward_variants(
    model: UNet, device: torch.device, batch: int = 2, repeats: int = 9, compile_model: bool = False
) -> dict[str, float]:
    """Seconds per network forward (batch 2 = one CFG step) along the fast path, interleaved."""
    x = torch.randn(batch, model.config.in_channels, SEGMENT_STEPS, N_PITCHES, device=device)
    t = torch.full((batch,), 500, device=device)
    variants = {
        "fp32": network(model, "fp32"),
        "bf16_autocast_nchw": _autocast_nchw(model),
        "bf16_channels_last": network(model, "bf16"),
    }
    if compile_model:
        variants["bf16_channels_last_compiled"] = network(torch.compile(model), "bf16")

    def timed(fn):
        def run():
            fn(x, t)
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    with torch.inference_mode():
        times = _interleaved_medians([timed(fn) for fn in variants.values()], repeats)
    return {f"forward_{name}_s": round(s, 4) for name, s in zip(variants, times, strict=True)}


def _autocast_nchw(model: UNet):
    def run(x, t):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return model(x, t).float()

    return run


def legacy_step(trainer):
    """The training step as it was before issue 10, as a baseline on the same model and
    batches: NCHW activations, AdamW and gradient clipping with torch's defaults (no fused
    kernel), a Python loop of per-parameter EMA updates and a loss read-back (device sync)
    every step."""
    trainer.model.to(memory_format=torch.contiguous_format)
    cfg = trainer.cfg
    opt = torch.optim.AdamW(trainer.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(batch, i):
        for group in opt.param_groups:
            group["lr"] = lr_at(i, cfg)
        loss = diffusion_loss(trainer.model, trainer.schedule, batch, trainer.device, channels_last=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + i) / (10 + i))
            for p_ema, p in zip(trainer.ema.parameters(), trainer.model.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        return loss.item()

    return step


def _train_rate(step, batches, sync) -> float:
    step(batches[0], 0)  # warm-up (allocations, cuDNN autotuning, compilation)
    sync()
    began = time.perf_counter()
    for i, b in enumerate(batches[1:], start=1):
        step(b, i)
    sync()
    return (len(batches) - 1) * len(batches[0]["t"]) / (time.perf_counter() - began)


def _host_profile(step, batches) -> dict[str, float]:
    """Per step, from the PyTorch profiler: operators the host dispatches from Python
    (``aten::`` events inside no other ``aten::`` op: on a GPU, each is at least one kernel
    launch) and, among them, reads of a tensor back to Python (``aten::item``: on a GPU, each
    waits for the device)."""
    from torch.profiler import ProfilerActivity, profile  # only with --baseline; a heavy import

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i, b in enumerate(batches):
            step(b, i)

    def inside_an_op(event) -> bool:
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        return parent is not None

    top = [e for e in prof.events() if e.name.startswith("aten::") and not inside_an_op(e)]
    n = len(batches)
    return {
        "host_ops_per_step": round(len(top) / n, 1),
        "reads_back_per_step": round(sum(e.name == "aten::item" for e in top) / n, 2),
    }


def bench_training(
    preset: str, device: torch.device, batch: int, steps: int = 6, compile_model: bool = False, baseline: bool = False
) -> dict:
    """``fgg.train``'s training step on synthetic POP909-shaped batches: samples/s; with
    ``baseline``, also the pre-issue-10 step (``legacy_step``) and, for both, the host-side
    operator and sync counts per step (the profiler's view of launch/sync overhead)."""
    cfg = TrainConfig(preset=preset, batch_size=batch)
    trainer = Trainer(cfg, device, compile_model=compile_model)
    batches = [trainer.synthetic_batch(seed) for seed in range(steps + 1)]
    result = {
        "train_preset": preset,
        "train_batch": batch,
        "train_samples_per_s": round(_train_rate(trainer.step, batches, trainer.sync), 1),
    }
    if baseline:
        result.update({f"train_{k}": v for k, v in _host_profile(trainer.step, batches[:3]).items()})
        old = legacy_step(Trainer(cfg, device))
        result["train_samples_per_s_before"] = round(_train_rate(old, batches, trainer.sync), 1)
        result.update({f"train_{k}_before": v for k, v in _host_profile(old, batches[:3]).items()})
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fgg.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=shipped(ACCOMPANIMENT))
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="benchmark this preset with random weights instead")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd network (slow to build)")
    parser.add_argument("--train", action="store_true", help="measure training throughput only")
    parser.add_argument("--train-batch", type=int, default=0, help="training batch (default 128 on CUDA, 32 on CPU)")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="with --train: also the pre-issue-10 training step, and host-side op/sync counts",
    )
    return parser


def bench_sampling(model: UNet, device: torch.device, repeats: int) -> dict:
    """Median seconds of 4 bars (FGG on/off, fp32/bf16, with and without melody + rhythm) and
    of 32 bars, with the out-of-key counts of the guided samples and the bf16 floor."""
    gens = {p: Generator(model, device, precision=p) for p in ("fp32", "bf16")}
    melody = np.zeros((2, SEGMENT_STEPS, N_PITCHES), dtype=bool)
    melody[0, ::8, 40] = True
    common = dict(melody=melody, rhythm="eighth_arpeggio", cfg_scale=7.5, steps=10, seed=0)
    out_of_key = {}

    def four_bars(precision: str, fgg: bool = True, **extra):
        def run():
            kwargs = {**common, **extra}
            out_of_key[precision] = gens[precision].generate(CHORDS, fgg=fgg, **kwargs).out_of_key_notes

        return run

    fp32, bf16, bf16_no_fgg, bf16_chords_only = _interleaved_medians(
        [
            four_bars("fp32"),
            four_bars("bf16"),
            four_bars("bf16", fgg=False),
            four_bars("bf16", melody=None, rhythm=None),
        ],
        repeats,
    )
    four_bars("fp32")(), four_bars("bf16")()  # the out-of-key counts of the FGG samples
    auto = Generator(model, device)
    long_piece = _median_seconds(
        lambda: auto.generate(CHORDS, bars=32, fgg=True, rhythm="eighth_arpeggio"), max(3, repeats // 4), warmup=1
    )
    peak = matmul_peak_gflops(device)
    flops_4bar = 10 * 2 * forward_gflops(model)  # 10 steps x (conditional + null) forwards
    return {
        "auto_precision": auto.precision,
        "parameters": count_parameters(model),
        "gflop_per_forward": round(forward_gflops(model), 3),
        "sample_4bar_fgg_fp32_s": round(fp32, 4),
        "sample_4bar_fgg_bf16_s": round(bf16, 4),
        "bf16_speedup": round(fp32 / bf16, 2),
        "out_of_key_notes_fp32": out_of_key["fp32"],
        "out_of_key_notes_bf16": out_of_key["bf16"],
        "sample_4bar_no_fgg_bf16_s": round(bf16_no_fgg, 4),
        "fgg_overhead_pct": round(100 * (bf16 / bf16_no_fgg - 1), 2),
        "sample_4bar_chords_only_bf16_s": round(bf16_chords_only, 4),
        "sample_32bar_fgg_auto_s": round(long_piece, 3),
        "bf16_matmul_peak_gflops": round(peak, 1),
        "sample_4bar_bf16_floor_s": round(flops_4bar / peak, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    common_facts = {
        "device": str(device),
        "device_name": device_description(device),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    train_batch = args.train_batch or (128 if device.type == "cuda" else 32)
    if args.train:
        preset = args.preset or (args.model if args.model in PRESETS else "paper")
        training = bench_training(preset, device, train_batch, compile_model=args.compile, baseline=args.baseline)
        print(json.dumps({**common_facts, **training}))
        return 0
    if args.preset:
        torch.manual_seed(0)
        model, source = UNet(PRESETS[args.preset]), f"preset {args.preset} (random weights)"
        preset = args.preset
    else:
        source = args.checkpoint or args.model
        model = load_model(resolve_checkpoint(source), device)[0]
        preset = next((name for name, cfg in PRESETS.items() if cfg == model.config), "paper")
    result = {
        "model": source,
        **common_facts,
        **bench_sampling(model, device, args.repeats),
        **forward_variants(model, device, compile_model=args.compile),
        **bench_training(preset, device, train_batch),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
