"""Train the ε-prediction UNet on POP909 (``python -m fgg.train``).

    python -m fgg.train --preset small --steps 12000 --out runs/small [--resume] [--device auto]
        [--mode melody+accompaniment] [--max-seconds 420]
    torchrun --nproc_per_node=2 -m fgg.train ...      # DDP (gloo on CPU, nccl on CUDA)

Per step: a batch of 4-bar training segments (random transposition -5..+6), a random
timestep t ~ U{0..999}, x_t = √ᾱ_t x₀ + √(1-ᾱ_t) ε, loss = ‖ε - ε̂(x_t, t, cond)‖² (MSE).
Condition dropout for classifier-free guidance: per sample, the rhythm is replaced by the
null-rhythm chord condition with p = 0.5 and the melody by the null melody with p = 0.5.
``--mode melody+accompaniment`` trains the paper's second mode: x₀ is the melody and the
accompaniment as separate tracks (4 channels), conditioned on the chord condition alone
(rhythm dropout as above; the rhythm is the accompaniment's).
AdamW, linear warm-up, gradient clipping, EMA of the weights (the EMA is what samples).

Everything random (batch order, transpositions, t, ε, dropout) is drawn from generators
seeded by (seed, step), so ``--resume`` from a checkpoint replays exactly the batches an
uninterrupted run would have seen — also with ``--workers`` data-loader processes, which
build step k's batch (and its noise) as a pure function of k, pinned for the GPU copy.

Kept off the host's critical path (it is the GPU's bottleneck at this model size): the EMA is
one fused ``_foreach_lerp_``, AdamW is ``fused``, activations are channels-last on
CUDA (NHWC tensor-core convolutions), ``--compile`` compiles the network, and the loss is
read back (a device sync) only every ``log_every`` steps — a non-finite loss stops the run
at the next log line.

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
from fgg.model import PRESETS, UNet, UNetConfig, count_parameters, model_config
from fgg.modes import ACCOMPANIMENT, MODES, Mode, get_mode
from fgg.pianoroll import N_PITCHES, SEGMENT_STEPS


@dataclass
class TrainConfig:
    preset: str = "small"
    mode: str = ACCOMPANIMENT.name  # a name in fgg.modes.MODES
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


def condition_batch(
    batch: dict[str, torch.Tensor],
    drop_rhythm: torch.Tensor,
    drop_melody: torch.Tensor,
    mode: str | Mode = ACCOMPANIMENT,
) -> torch.Tensor:
    """``mode``'s condition channels (``Mode.condition``): chord (+rhythm, or the null rhythm
    where ``drop_rhythm``) ++ melody (or the null melody where ``drop_melody``), (B, 4, T, P);
    the chord channels alone, (B, 2, T, P), for a mode that writes the melody."""
    mode = get_mode(mode)
    channels = {"chord": torch.where(drop_rhythm[:, None, None, None], batch["chord_null"], batch["chord"])}
    if mode.takes_melody:
        null = torch.full_like(batch["melody"], -1.0)
        channels["melody"] = torch.where(drop_melody[:, None, None, None], null, batch["melody"])
    return mode.condition(channels)


def collate(dataset: PianoRollDataset, indices, transposes) -> dict[str, torch.Tensor]:
    items = [dataset.item(int(i), int(k)) for i, k in zip(indices, transposes, strict=True)]
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


def draw_noise(
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    num_timesteps: int,
    p_rhythm: float,
    p_melody: float,
    mode: str | Mode = ACCOMPANIMENT,
) -> dict[str, torch.Tensor]:
    """``batch`` plus its diffusion randomness: t ~ U{0..T-1}, ε (shaped like ``mode``'s x₀),
    the two dropout masks."""
    b, _, steps, pitches = batch["accompaniment"].shape
    return {
        **batch,
        "t": torch.randint(0, num_timesteps, (b,), generator=generator),
        "noise": torch.randn((b, get_mode(mode).channels, steps, pitches), generator=generator),
        "drop_rhythm": torch.rand(b, generator=generator) < p_rhythm,
        "drop_melody": torch.rand(b, generator=generator) < p_melody,
    }


def diffusion_loss(
    model, schedule: Schedule, batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool | None = None
) -> torch.Tensor:
    """MSE between ε and ε̂(x_t, t, cond) for a batch with its noise (``draw_noise``, whose ε
    says the mode: 2 channels accompaniment, 4 melody+accompaniment); ``channels_last``
    (default: on CUDA) is the activations' layout."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    noise, t = batch["noise"], batch["t"]  # (B, C, T, P), (B,)
    mode = next(m for m in MODES.values() if m.channels == noise.shape[1])
    x0 = mode.target(batch)  # (B, C, T, P)
    cond = condition_batch(batch, batch["drop_rhythm"], batch["drop_melody"], mode)  # (B, 6 - C, T, P)
    x = torch.cat([schedule.add_noise(x0, noise, t), cond], dim=1)  # (B, 6, T, P)
    if device.type == "cuda" if channels_last is None else channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        pred = model(x, t)  # (B, 2, T, P)
    return torch.nn.functional.mse_loss(pred.float(), noise)


class StepBatches(torch.utils.data.Dataset):
    """Item k = the whole batch of training step k for this process, noise included: a pure
    function of (seed, k, rank), so any data-loader worker builds it and a resumed run gets
    exactly the batches an uninterrupted one would have."""

    def __init__(self, dataset: PianoRollDataset, cfg: TrainConfig, rank: int, world: int, num_timesteps: int):
        self.dataset, self.cfg, self.rank, self.world, self.num_timesteps = dataset, cfg, rank, world, num_timesteps
        self.global_batch = cfg.batch_size * world
        self.per_epoch = len(dataset) // self.global_batch

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        epoch, pos = divmod(step, self.per_epoch)
        perm = np.random.default_rng((cfg.seed, epoch)).permutation(len(self.dataset))
        indices = perm[pos * self.global_batch : (pos + 1) * self.global_batch][self.rank :: self.world]
        transposes = np.random.default_rng((cfg.seed, step, self.rank)).integers(
            TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1, len(indices)
        )
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + self.rank)
        return draw_noise(
            collate(self.dataset, indices, transposes),
            generator,
            self.num_timesteps,
            cfg.p_drop_rhythm,
            cfg.p_drop_melody,
            cfg.mode,
        )


class Trainer:
    """Model, EMA, optimizer and one training step, with nothing in the step that waits for
    the device (see the module docstring)."""

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        model: UNet | None = None,
        distributed: bool = False,
        compile_model: bool = False,
        channels_last: bool | None = None,
    ):
        self.cfg, self.device = cfg, device
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        self.schedule = Schedule.paper()
        if model is None:
            torch.manual_seed(cfg.seed)  # same initial weights on every process and every rerun
            model = UNet(model_config(cfg.preset, cfg.mode))
        self.model = model.to(device)
        if self.channels_last:
            # torch's stub of Module.to omits memory_format, which it accepts
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        # Fused AdamW: one kernel for all parameters, step counts kept on the device (no reads back).
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        net = torch.nn.parallel.DistributedDataParallel(self.model) if distributed else self.model
        self.net = torch.compile(net) if compile_model else net
        self._params: list[torch.Tensor] = list(self.model.parameters())
        self._ema_params: list[torch.Tensor] = list(self.ema.parameters())

    def load_optimizer(self, state: dict) -> None:
        """Restore a saved optimizer state. The saved moments are contiguous; CUDA's fused AdamW
        refuses moments laid out unlike their (channels-last) parameters, so they are re-laid."""
        self.opt.load_state_dict(state)
        for param in self._params:
            moments = self.opt.state.get(param, {})
            for key, value in moments.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    moments[key] = torch.empty_like(param).copy_(value)

    def step(self, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        """One optimizer step (``step`` = its 0-based index: learning rate, EMA warm-up);
        returns the loss as a device tensor, not read back."""
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step, self.cfg)
        loss = diffusion_loss(self.net, self.schedule, batch, self.device, self.channels_last)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._params, self.cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(self.cfg.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(self._ema_params, self._params, 1 - decay)
        return loss.detach()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def synthetic_batch(self, seed: int) -> dict[str, torch.Tensor]:
        """A POP909-shaped batch of random content (for benchmarks without the dataset)."""
        g = torch.Generator().manual_seed(seed)
        shape = (self.cfg.batch_size, 2, SEGMENT_STEPS, N_PITCHES)
        batch = {
            "accompaniment": (torch.rand(shape, generator=g) > 0.97).float(),
            "melody": (torch.rand(shape, generator=g) > 0.98).float(),
            "chord": torch.rand(shape, generator=g),
            "chord_null": torch.rand(shape, generator=g),
        }
        batch = draw_noise(
            batch, g, self.schedule.num_timesteps, self.cfg.p_drop_rhythm, self.cfg.p_drop_melody, self.cfg.mode
        )
        return {k: v.pin_memory() if self.device.type == "cuda" else v for k, v in batch.items()}


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
        idx = order[start : start + 64]
        batch = draw_noise(
            collate(dataset, idx, np.zeros(len(idx), dtype=int)),
            gen,
            schedule.num_timesteps,
            cfg.p_drop_rhythm,
            cfg.p_drop_melody,
            cfg.mode,
        )
        losses.append(diffusion_loss(model, schedule, batch, device).item() * len(idx))
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


def save_state(
    out: Path, model: UNet, ema: UNet, opt, step: int, cfg: TrainConfig, elapsed: float, valid: float | None
):
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt_tensors, opt_scalars = _flatten_optimizer(opt)
    tensors.update(opt_tensors)
    save_file(tensors, str(out / "state.safetensors.tmp"))
    meta = {
        "step": step,
        "elapsed_s": elapsed,
        "train_config": asdict(cfg),
        "model_config": model.config.to_dict(),
        "optimizer": opt_scalars,
    }
    with open(out / "state.json.tmp", "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(out / "state.safetensors.tmp", out / "state.safetensors")
    os.replace(out / "state.json.tmp", out / "state.json")
    save_model(
        out / "model.safetensors",
        ema,
        {
            "train_steps": step,
            "valid_loss": valid,
            "preset": cfg.preset,
            "mode": cfg.mode,
            "trained_by": "python -m fgg.train",
        },
    )


def lr_at(step: int, cfg: TrainConfig) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))


def init_processes(device_name: str) -> tuple[torch.device, int, int]:
    """(device, rank, world size); under ``torchrun`` (WORLD_SIZE > 1) joins the process group,
    one CUDA device per local rank."""
    device = resolve_device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        if device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        return device, 0, 1
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), dist.get_world_size()


def resume_trainer(cfg: TrainConfig, out: Path, resume: bool, device, distributed: bool, compile_model: bool):
    """A fresh ``Trainer``, or one restored from ``out/state.*`` (model, EMA, optimizer) when
    resuming; returns (trainer, step, elapsed seconds)."""
    if not (resume and (out / "state.json").is_file()):
        return Trainer(cfg, device, None, distributed, compile_model), 0, 0.0
    with open(out / "state.json", encoding="utf-8") as f:
        meta = json.load(f)
    model = UNet(UNetConfig.from_dict(meta["model_config"]))
    tensors = load_file(str(out / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    trainer = Trainer(cfg, device, model, distributed, compile_model)
    trainer.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    trainer.load_optimizer(_unflatten_optimizer(tensors, meta["optimizer"]))
    return trainer, meta["step"], meta["elapsed_s"]


def out_of_time(began: float, max_seconds: float | None, device, distributed: bool) -> bool:
    """Whether the wall-time budget is spent; every rank agrees, so all stop at the same step."""
    spent = max_seconds is not None and time.perf_counter() - began >= max_seconds
    if distributed and max_seconds is not None:
        flag = torch.tensor(float(spent), device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        spent = bool(flag.item())
    return spent


def append_log(path: Path, step: int, train_loss: float, valid: float | None, elapsed: float, rate: float) -> None:
    with open(path, "a", newline="") as f:
        valid_text = "" if valid is None else f"{valid:.5f}"
        csv.writer(f).writerow([step, f"{train_loss:.5f}", valid_text, f"{elapsed:.1f}", f"{rate:.1f}"])


def train(
    cfg: TrainConfig,
    out: Path,
    resume: bool = False,
    device_name: str = "auto",
    pop909=None,
    workers: int = 0,
    compile_model: bool = False,
    max_seconds: float | None = None,
) -> dict:
    """Train to ``cfg.steps``; with ``max_seconds``, stop earlier at the first log line after
    that much wall time (validated and checkpointed there, so a lease on a rented GPU ends
    with a usable model and a run that ``--resume`` continues)."""
    began = time.perf_counter()
    device, rank, world = init_processes(device_name)
    distributed, main_process = world > 1, rank == 0
    collection, _ = build_songs(pop909)
    train_set = PianoRollDataset(collection, "train", augment=True)
    valid_set = PianoRollDataset(collection, "valid", augment=False)
    out.mkdir(parents=True, exist_ok=True)
    trainer, step, elapsed = resume_trainer(cfg, out, resume, device, distributed, compile_model)
    log_path = out / "log.csv"
    if main_process and not (resume and log_path.is_file()):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "train_loss", "valid_loss", "seconds", "samples_per_s"])
    if main_process:
        start = {"preset": cfg.preset, "mode": cfg.mode, "parameters": count_parameters(trainer.model)}
        start |= {"train_segments": len(train_set), "valid_segments": len(valid_set), "device": str(device)}
        print(json.dumps(start | {"world_size": world, "start_step": step, "workers": workers}), flush=True)
    batches = torch.utils.data.DataLoader(
        StepBatches(train_set, cfg, rank, world, trainer.schedule.num_timesteps),
        batch_size=None,
        sampler=range(step, cfg.steps),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    window_loss, window_n, window_start = torch.zeros((), device=device), 0, time.perf_counter()
    valid = None
    bar = tqdm(total=cfg.steps, initial=step, disable=not main_process, mininterval=5, dynamic_ncols=True)
    for batch in batches:
        window_loss += trainer.step(batch, step)
        window_n, step = window_n + 1, step + 1
        bar.update(1)
        if step % cfg.log_every and step != cfg.steps:
            continue
        stop = out_of_time(began, max_seconds, device, distributed)
        train_loss = window_loss.item() / window_n  # the one device sync per log line
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"loss became {train_loss} in steps {step - window_n + 1}-{step}")
        now = time.perf_counter()
        elapsed += now - window_start
        rate = window_n * cfg.batch_size * world / (now - window_start)
        last = step == cfg.steps or stop
        valid = None
        if main_process and (step % cfg.valid_every == 0 or last):
            valid = validation_loss(trainer.ema, trainer.schedule, valid_set, cfg, device)
        if main_process:
            bar.set_postfix(loss=f"{train_loss:.4f}", samples_s=f"{rate:.1f}")
            append_log(log_path, step, train_loss, valid, elapsed, rate)
            if step % cfg.checkpoint_every == 0 or last:
                save_state(out, trainer.model, trainer.ema, trainer.opt, step, cfg, elapsed, valid)
        window_loss.zero_()
        window_n, window_start = 0, time.perf_counter()
        if stop:
            break
    bar.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return {"step": step, "valid_loss": valid, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.train", description="Train the FGG diffusion UNet on POP909.")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument(
        "--mode",
        default=ACCOMPANIMENT.name,
        choices=list(MODES),
        help="what the model generates: the accompaniment (from chords + melody) or melody and "
        "accompaniment (from chords alone)",
    )
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
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes building batches ahead")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network (CUDA: faster steps)")
    parser.add_argument("--pop909", help="POP909 folder (default $FGG_POP909_DIR or ../shared/data/pop909)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="wall-time budget: stop at the first log line after it (validated + checkpointed; --resume continues)",
    )
    args = parser.parse_args(argv)
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")
    cfg = TrainConfig(
        preset=args.preset,
        mode=args.mode,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        log_every=args.log_every,
        valid_every=args.valid_every,
        checkpoint_every=args.checkpoint_every,
        valid_segments=args.valid_segments,
        seed=args.seed,
    )
    out = Path(args.out)
    if args.resume and (out / "state.json").is_file():
        with open(out / "state.json", encoding="utf-8") as f:
            saved = json.load(f)["train_config"]
        saved["steps"] = args.steps  # the one thing a resume may change: train longer
        cfg = TrainConfig(**saved)
    result = train(
        cfg,
        out,
        resume=args.resume,
        device_name=args.device,
        pop909=args.pop909,
        workers=args.workers,
        compile_model=args.compile,
        max_seconds=args.max_seconds,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
