"""Numeric precision of the network (``precision="auto"|"fp32"|"bf16"``).

bf16 runs the UNet under ``torch.autocast`` with channels-last activations (oneDNN's fast
bf16 convolutions are NHWC): on a CPU with native bf16 dot products (AVX-512 BF16 or AMX)
that is ~1.6x faster than fp32. On CUDA a batch-1 sample is bound by kernel launches, not
arithmetic, and autocast's casts add launches: measured on an H100 (``fgg.bench --device cuda
--preset paper``), a 4-bar sample took 0.197 s in fp32 and 0.287 s in bf16, so ``auto`` keeps
fp32 there (training, at batch 128, does use bf16 on CUDA). The fp32 path is the unchanged
reference, bit for bit. Only the network runs in bf16: its ε̂ is cast back to fp32 before x̂₀ is derived, so CFG, FGG's
projections and the DDIM update all stay fp32 — the out-of-key guarantee does not depend on
the precision (tested). ``auto`` picks bf16 only on CPUs that have it natively (detected
through torch's own CPU-capability checks, not guessed from the model name), fp32 elsewhere:
emulated bf16 would be slower than fp32, and on CUDA see above.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

import torch

PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_HELP = "network precision: auto = bf16 on a CPU with native bf16, else fp32 (also on CUDA: faster at batch 1)"
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cpu_has_native_bf16() -> bool:
    """True where the CPU executes bf16 dot products natively (AVX-512 BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """ "auto" -> "bf16" on CPUs with native bf16, else "fp32" (CUDA included); "fp32"/"bf16" as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    return "bf16" if kind == "cpu" and cpu_has_native_bf16() else "fp32"


def network(model: torch.nn.Module | Network, precision: str) -> Network:
    """``(x (B, C, T, P), t (B,)) -> ε̂ (B, C_out, T, P)`` float32, computed in ``precision``
    ("fp32" or "bf16", already resolved)."""
    if precision == "fp32":
        return model
    if precision != "bf16":
        raise ValueError(f"network precision must be fp32 or bf16, got {precision!r}")

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            out = model(x.contiguous(memory_format=torch.channels_last), t)
        return out.float().contiguous()  # (B, C_out, T, P)

    return run


def device_description(device: str | torch.device) -> str:
    """The hardware behind ``device`` in words, for benchmark and evaluation records."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    bf16 = "native bf16" if cpu_has_native_bf16() else "no native bf16"
    return f"{name}, {os.cpu_count()} cores, {bf16}"
