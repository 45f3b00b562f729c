"""Speed benchmark (``python -m fgg.bench``): prints one JSON object of medians.

Measures, for the shipped checkpoint (or ``--preset`` with random weights): parameters,
GFLOP per forward (batch 1), seconds for a 4-bar sample with and without FGG (batch 1,
10 DDIM steps, CFG on with melody + rhythm so both predictions run), seconds for a 32-bar
piece, and training throughput (samples/s at batch 32 on random data).
Targets on the 2-core CPU: 4 bars with FGG ≤ 0.5 s, FGG overhead ≤ 5 %, 32 bars ≤ 4 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from fgg.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS, resolve_device
from fgg.diffusion import Schedule
from fgg.generate import Generator
from fgg.model import PRESETS, UNet, count_parameters, forward_gflops
from fgg.pianoroll import N_PITCHES, SEGMENT_STEPS

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
    times = [[] for _ in fns]
    for i in range(warmup + repeats):
        for fn, bucket in zip(fns, times):
            began = time.perf_counter()
            fn()
            if i >= warmup:
                bucket.append(time.perf_counter() - began)
    return [statistics.median(t) for t in times]


def training_samples_per_second(model: UNet, batch: int = 32, repeats: int = 5,
                                device: torch.device = torch.device("cpu")) -> float:
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    schedule = Schedule.paper()
    x0 = (torch.rand(batch, 2, SEGMENT_STEPS, N_PITCHES, device=device) > 0.97).float()
    cond = torch.randn(batch, 4, SEGMENT_STEPS, N_PITCHES, device=device)

    def step():
        t = torch.randint(0, 1000, (batch,), device=device)
        noise = torch.randn_like(x0)
        loss = torch.nn.functional.mse_loss(model(torch.cat([schedule.add_noise(x0, noise, t), cond], 1), t), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return batch / _median_seconds(step, repeats, warmup=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(SHIPPED_MODELS))
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="benchmark this preset with random weights instead")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.preset:
        torch.manual_seed(0)
        gen, source = Generator(UNet(PRESETS[args.preset]), device), f"preset {args.preset} (random weights)"
    else:
        source = args.checkpoint or args.model
        gen = Generator.from_checkpoint(source, device)
    melody = np.zeros((2, SEGMENT_STEPS, N_PITCHES), dtype=bool)
    melody[0, ::8, 40] = True
    common = dict(melody=melody, rhythm="eighth_arpeggio", cfg_scale=7.5, steps=10, seed=0)
    # Interleaved, so that machine noise and drift hit both variants alike.
    with_fgg, without_fgg = _interleaved_medians([lambda: gen.generate(CHORDS, fgg=True, **common),
                                                  lambda: gen.generate(CHORDS, fgg=False, **common)], args.repeats)
    long_piece = _median_seconds(lambda: gen.generate(CHORDS, bars=32, fgg=True, rhythm="eighth_arpeggio"),
                                 max(3, args.repeats // 2), warmup=1)
    result = {
        "model": source,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "parameters": count_parameters(gen.model),
        "gflop_per_forward": round(forward_gflops(gen.model), 3),
        "sample_4bar_fgg_s": round(with_fgg, 4),
        "sample_4bar_no_fgg_s": round(without_fgg, 4),
        "fgg_overhead_pct": round(100 * (with_fgg / without_fgg - 1), 2),
        "sample_32bar_fgg_s": round(long_piece, 3),
        "train_samples_per_s": round(training_samples_per_second(UNet(gen.model.config), device=device), 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
