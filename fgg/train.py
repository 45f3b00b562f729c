"""Train the ε-prediction UNet on POP909 (``python -m fgg.train``).

    python -m fgg.train --preset small --steps 12000 --out runs/small [--resume] [--device auto]
    torchrun --nproc_per_node=2 -m fgg.train ...      # DDP (gloo on CPU, nccl on CUDA)

Per step: a batch of 4-bar training segments (random transposition -5..+6), a random
timestep t ~ U{0..999}, x_t = √ᾱ_t x₀ + √(1-ᾱ_t) ε, loss = ‖ε - ε̂(x_t, t, cond)‖² (MSE).
Condition dropout for classifier-free guidance: per sample, the rhythm is replaced by the
null-rhythm chord condition with p = 0.5 and the melody by the null melody with p = 0.5.
AdamW, linear warm-up, gradient clipping, EMA of the weights (the EMA is what samples).

Everything random (batch order, transpositions, t, ε, dropout) is drawn from generators
seeded by (seed, step), so ``--resume`` from a checkpoint replays exactly the batches an
uninterrupted run would have seen.

Files in ``--out``: ``state.safetensors``/``state.json`` (full training state for resume),
``model.safetensors``/``model.json`` (EMA weights in fp16 + config, what generation loads),
``log.csv`` (step, train_loss, valid_loss, seconds, samples_per_s).
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from fgg.checkpoint import resolve_device, save_model
from fgg.data import TRANSPOSE_RANGE, PianoRollDataset, build_songs
from fgg.diffusion import Schedule
from fgg.model import PRESETS, UNet, UNetConfig, count_parameters


@dataclass
class TrainConfig:
    preset: str = "small"
    steps: int = 12000
    batch_size: int = 32  # per process
    lr: float = 4e-4
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    p_drop_rhythm: float = 0.5
    p_drop_melody: float = 0.5
    log_every: int = 50
    valid_every: int = 500
    valid_segments: int = 512
    checkpoint_every: int = 500
    seed: int = 0


def condition_batch(batch: dict[str, torch.Tensor], drop_rhythm: torch.Tensor, drop_melody: torch.Tensor) -> torch.Tensor:
    """(B, 4, T, P) condition channels = chord(+rhythm or null rhythm) ++ melody (or null)."""
    chord = torch.where(drop_rhythm[:, None, None, None], batch["chord_null"], batch["chord"])
    melody = torch.where(drop_melody[:, None, None, None], torch.full_like(batch["melody"], -1.0), batch["melody"])
    return torch.cat([chord, melody], dim=1)


def collate(dataset: PianoRollDataset, indices, transposes) -> dict[str, torch.Tensor]:
    items = [dataset.item(int(i), int(k)) for i, k in zip(indices, transposes)]
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


def diffusion_loss(model, schedule: Schedule, batch, generator: torch.Generator, p_rhythm: float, p_melody: float,
                   device) -> torch.Tensor:
    x0 = batch["accompaniment"].to(device)  # (B, 2, T, P)
    b = x0.shape[0]
    t = torch.randint(0, schedule.num_timesteps, (b,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    drop_rhythm = torch.rand(b, generator=generator) < p_rhythm
    drop_melody = torch.rand(b, generator=generator) < p_melody
    cond = condition_batch(batch, drop_rhythm, drop_melody).to(device)  # (B, 4, T, P)
    noise, t = noise.to(device), t.to(device)
    x_t = schedule.add_noise(x0, noise, t)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        pred = model(torch.cat([x_t, cond], dim=1), t)  # (B, 2, T, P)
    return torch.nn.functional.mse_loss(pred.float(), noise)


@torch.no_grad()
def validation_loss(model, schedule, dataset: PianoRollDataset, cfg: TrainConfig, device) -> float:
    """Mean loss over a fixed set of validation segments with fixed t, ε and dropout, so the
    number is comparable across evaluations and runs."""
    model.eval()
    gen = torch.Generator().manual_seed(12345)
    n = min(cfg.valid_segments, len(dataset))
    order = np.random.default_rng(12345).permutation(len(dataset))[:n]
    losses = []
    for start in range(0, n, 64):
        idx = order[start:start + 64]
        batch = collate(dataset, idx, np.zeros(len(idx), dtype=int))
        losses.append(diffusion_loss(model, schedule, batch, gen, cfg.p_drop_rhythm, cfg.p_drop_melody, device).item() * len(idx))
    model.train()
    return float(sum(losses) / n)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = opt.state_dict()
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars["state"].setdefault(str(pid), {})[key] = value
    return tensors, scalars


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], scalars: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, extra in scalars["state"].items():
        state.setdefault(int(pid), {}).update(extra)
    return {"state": state, "param_groups": scalars["param_groups"]}


def save_state(out: Path, model: UNet, ema: UNet, opt, step: int, cfg: TrainConfig, elapsed: float, valid: float | None):
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt_tensors, opt_scalars = _flatten_optimizer(opt)
    tensors.update(opt_tensors)
    save_file(tensors, str(out / "state.safetensors.tmp"))
    meta = {"step": step, "elapsed_s": elapsed, "train_config": asdict(cfg), "model_config": model.config.to_dict(),
            "optimizer": opt_scalars}
    with open(out / "state.json.tmp", "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(out / "state.safetensors.tmp", out / "state.safetensors")
    os.replace(out / "state.json.tmp", out / "state.json")
    save_model(out / "model.safetensors", ema, {"train_steps": step, "valid_loss": valid, "preset": cfg.preset,
                                               "trained_by": "python -m fgg.train"})


def lr_at(step: int, cfg: TrainConfig) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))


def train(cfg: TrainConfig, out: Path, resume: bool = False, device_name: str = "auto", pop909=None) -> dict:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = resolve_device(device_name)
    if distributed:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    main_process = rank == 0
    if device.type == "cpu" and not distributed:
        torch.set_num_threads(os.cpu_count() or 1)

    collection, _ = build_songs(pop909)
    train_set = PianoRollDataset(collection, "train", augment=True)
    valid_set = PianoRollDataset(collection, "valid", augment=False)
    schedule = Schedule.paper()

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # same initial weights on every process and every rerun
    model = UNet(PRESETS[cfg.preset]).to(device)
    step, elapsed = 0, 0.0
    opt_state = None
    if resume and (out / "state.json").is_file():
        with open(out / "state.json", encoding="utf-8") as f:
            meta = json.load(f)
        model = UNet(UNetConfig.from_dict(meta["model_config"])).to(device)
        tensors = load_file(str(out / "state.safetensors"))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        step, elapsed = meta["step"], meta["elapsed_s"]
        opt_state = _unflatten_optimizer(tensors, meta["optimizer"])
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    if opt_state is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    log_path = out / "log.csv"
    if main_process and not (resume and log_path.is_file()):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "train_loss", "valid_loss", "seconds", "samples_per_s"])
    if main_process:
        print(json.dumps({"preset": cfg.preset, "parameters": count_parameters(model), "train_segments": len(train_set),
                          "valid_segments": len(valid_set), "device": str(device), "world_size": world,
                          "start_step": step}), flush=True)

    global_batch = cfg.batch_size * world
    per_epoch = len(train_set) // global_batch
    window_loss, window_n, window_start = 0.0, 0, time.perf_counter()
    valid = None
    bar = tqdm(total=cfg.steps, initial=step, disable=not main_process, mininterval=5, dynamic_ncols=True)
    while step < cfg.steps:
        epoch, pos = divmod(step, per_epoch)
        perm = np.random.default_rng((cfg.seed, epoch)).permutation(len(train_set))
        indices = perm[pos * global_batch:(pos + 1) * global_batch][rank::world]
        transposes = np.random.default_rng((cfg.seed, step, rank)).integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1, len(indices))
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + rank)
        batch = collate(train_set, indices, transposes)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = diffusion_loss(net, schedule, batch, generator, cfg.p_drop_rhythm, cfg.p_drop_melody, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - decay)
        step += 1
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss became {loss_value} at step {step}")
        window_loss += loss_value
        window_n += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            elapsed += now - window_start
            rate = window_n * global_batch / (now - window_start)
            train_loss = window_loss / window_n
            valid = None
            if step % cfg.valid_every == 0 or step == cfg.steps:
                valid = validation_loss(ema, schedule, valid_set, cfg, device) if main_process else None
            if main_process:
                bar.set_postfix(loss=f"{train_loss:.4f}", samples_s=f"{rate:.1f}")
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([step, f"{train_loss:.5f}", "" if valid is None else f"{valid:.5f}",
                                            f"{elapsed:.1f}", f"{rate:.1f}"])
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    save_state(out, model, ema, opt, step, cfg, elapsed, valid)
            window_loss, window_n, window_start = 0.0, 0, time.perf_counter()
    bar.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return {"step": step, "valid_loss": valid, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.train", description="Train the FGG diffusion UNet on POP909.")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="total optimizer steps")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, log.csv)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="per process")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--log-every", type=int, default=TrainConfig.log_every)
    parser.add_argument("--valid-every", type=int, default=TrainConfig.valid_every)
    parser.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    parser.add_argument("--valid-segments", type=int, default=TrainConfig.valid_segments)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pop909", help="POP909 folder (default $FGG_POP909_DIR or ../shared/data/pop909)")
    args = parser.parse_args(argv)
    cfg = TrainConfig(preset=args.preset, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      log_every=args.log_every, valid_every=args.valid_every, checkpoint_every=args.checkpoint_every,
                      valid_segments=args.valid_segments, seed=args.seed)
    out = Path(args.out)
    if args.resume and (out / "state.json").is_file():
        with open(out / "state.json", encoding="utf-8") as f:
            saved = json.load(f)["train_config"]
        saved["steps"] = args.steps  # the one thing a resume may change: train longer
        cfg = TrainConfig(**saved)
    result = train(cfg, out, resume=args.resume, device_name=args.device, pop909=args.pop909)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
