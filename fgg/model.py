"""The noise-prediction network: a 2D UNet over the (time x pitch) piano roll.

Input ``(B, 6, 64, 64)`` = noisy accompaniment x_t (2 ch) ++ chord/rhythm condition (2 ch)
++ melody condition (2 ch), concatenated on channels (the paper's conditioning by
concatenation); output ε̂ ``(B, 2, 64, 64)``. The timestep enters through a sinusoidal
embedding added inside every residual block. The architecture is the usual DDPM/ADM UNet:
residual blocks with GroupNorm, strided-conv downsampling, nearest upsampling, skip
concatenation, multi-head self-attention at the chosen (low) resolutions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from fgg.modes import ACCOMPANIMENT, Mode, get_mode


@dataclass
class UNetConfig:
    in_channels: int = 6
    out_channels: int = 2
    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (3,)  # indices into channel_mults
    num_heads: int = 4
    dropout: float = 0.0
    norm_groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        d = dict(d)
        for key in ("channel_mults", "attention_levels"):
            d[key] = tuple(d[key])
        return cls(**d)


PRESETS: dict[str, UNetConfig] = {
    # The paper's size: 64 base channels, [1,2,4,4], 2 res blocks, attention at the two lowest levels.
    "paper": UNetConfig(
        base_channels=64,
        channel_mults=(1, 2, 4, 4),
        num_res_blocks=2,
        attention_levels=(2, 3),
        num_heads=4,
        norm_groups=32,
    ),
    # Default: trains in about two hours on a 2-core CPU and samples 4 bars in well under 0.5 s.
    "small": UNetConfig(),
    # For tests: a forward pass in milliseconds.
    "tiny": UNetConfig(
        base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(2,), num_heads=2, norm_groups=4
    ),
}


def model_config(preset: str, mode: str | Mode = ACCOMPANIMENT) -> UNetConfig:
    """The ``preset``'s UNet for ``mode`` (its output: 2 channels, onset and sustain, per track)."""
    return replace(PRESETS[preset], out_channels=get_mode(mode).channels)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al.) of integer timesteps ``(B,)`` -> ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _zero_init(conv: nn.Conv2d) -> nn.Conv2d:
    """Zero weights and bias: a residual branch (or the output) starts at 0."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = _norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))  # each block starts as the identity
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.proj(out)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        ch = cfg.base_channels
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips = [ch]
        cur = ch
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                block = nn.ModuleList([ResBlock(cur, ch * mult, emb_dim, cfg.dropout, cfg.norm_groups)])
                cur = ch * mult
                if level in cfg.attention_levels:
                    block.append(SelfAttention(cur, cfg.num_heads, cfg.norm_groups))
                self.down.append(block)
                skips.append(cur)
            if level < len(cfg.channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                skips.append(cur)

        self.mid = nn.ModuleList(
            [
                ResBlock(cur, cur, emb_dim, cfg.dropout, cfg.norm_groups),
                SelfAttention(cur, cfg.num_heads, cfg.norm_groups),
                ResBlock(cur, cur, emb_dim, cfg.dropout, cfg.norm_groups),
            ]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for i in range(cfg.num_res_blocks + 1):
                block = nn.ModuleList([ResBlock(cur + skips.pop(), ch * mult, emb_dim, cfg.dropout, cfg.norm_groups)])
                cur = ch * mult
                if level in cfg.attention_levels:
                    block.append(SelfAttention(cur, cfg.num_heads, cfg.norm_groups))
                if level > 0 and i == cfg.num_res_blocks:
                    block.append(
                        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cur, cur, 3, padding=1))
                    )
                self.up.append(block)

        self.out = nn.Sequential(
            _norm(cur, cfg.norm_groups), nn.SiLU(), _zero_init(nn.Conv2d(cur, cfg.out_channels, 3, padding=1))
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, T, P) with T, P divisible by 2^(levels-1); t: (B,) timesteps."""
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels))  # (B, 4C)
        h = self.input(x)
        hs = [h]
        for block in self.down:
            for layer in cast(nn.ModuleList, block):
                h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        for block in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for layer in cast(nn.ModuleList, block):
                h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return self.out(h)  # (B, 2, T, P)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_gflops(model: UNet, batch: int = 1, steps: int = 64, pitches: int = 64) -> float:
    """Multiply-adds x 2 of one forward pass, counted by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode  # benchmarks only: keeps it off the import path

    device = next(model.parameters()).device
    x = torch.zeros(batch, model.config.in_channels, steps, pitches, device=device)
    t = torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t)
    return counter.get_total_flops() / 1e9
