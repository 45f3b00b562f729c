"""Diffusion maths and samplers, separate from the network (diffusers style) and written as
plain functions over a *denoiser* callable (k-diffusion style).

A denoiser maps ``(x_t (B, 2, T, P), t (B,) long) -> x̂₀ (B, 2, T, P)``, the predicted clean
roll. Guidance (CFG, FGG) wraps a denoiser; the samplers never know about it. Samplers derive
ε from x̂₀, so whatever edit a wrapper makes to x̂₀ is exactly what the update uses — the
paper's "re-derive ε from the edited x̂₀ before the DDIM update".

Forward process (DDPM, Ho et al. 2020): x_t = √ᾱ_t x₀ + √(1-ᾱ_t) ε, ᾱ_t = ∏_{s≤t}(1-β_s),
with the paper's schedule β_t on a √-spaced linear grid from 0.00085 to 0.012, T = 1000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor, torch.Tensor], None]  # (step, t, x_t, x̂₀)

NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 0.00085, 0.012
# The paper's 10 DDIM timesteps.
PAPER_TIMESTEPS = (13, 53, 116, 193, 310, 443, 587, 730, 845, 999)


@dataclass(frozen=True)
class Schedule:
    betas: torch.Tensor  # (T,) float64
    alphas_cumprod: torch.Tensor  # (T,) float64

    @classmethod
    def paper(cls, num_timesteps: int = NUM_TIMESTEPS) -> Schedule:
        betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, num_timesteps, dtype=torch.float64) ** 2
        return cls(betas, torch.cumprod(1.0 - betas, dim=0))

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """ᾱ_t for integer timesteps; t = -1 means "clean" (ᾱ = 1)."""
        t = torch.as_tensor(t, dtype=torch.long)
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        # The table stays on the CPU (float64 is slow or missing on accelerators); the result
        # goes back to the timesteps' device.
        return padded[t.cpu() + 1].to(t.device)

    def _abar_like(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """ᾱ_t shaped (B, 1, 1, ...) to broadcast against ``x``, in its dtype and device."""
        return self.abar(t).to(x.dtype).to(x.device).reshape(-1, *([1] * (x.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x₀) sample: √ᾱ_t x₀ + √(1-ᾱ_t) ε; ``t`` (B,) or scalar."""
        abar = self._abar_like(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def x0_from_eps(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self._abar_like(t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def eps_from_x0(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self._abar_like(t, x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()


def sampling_timesteps(steps: int, num_timesteps: int = NUM_TIMESTEPS) -> list[int]:
    """Descending timesteps for ``steps`` sampler steps: the paper's list for 10, otherwise
    evenly spaced from T-1 down to 0 (``steps == T`` gives full DDPM-length sampling)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in 1..{num_timesteps}, got {steps}")
    if steps == len(PAPER_TIMESTEPS) and num_timesteps == NUM_TIMESTEPS:
        return list(reversed(PAPER_TIMESTEPS))
    grid = torch.linspace(num_timesteps - 1, 0, steps).round().long().tolist()
    return sorted(set(grid), reverse=True)


def ddim_sigma(schedule: Schedule, t: int, t_prev: int) -> float:
    """DDIM's σ at η = 1 for the jump t -> t_prev (Song et al. 2021, eq. 16):
    √((1-ᾱ_{t'})/(1-ᾱ_t)) √(1-ᾱ_t/ᾱ_{t'}); over consecutive timesteps it is DDPM's step."""
    abar, abar_prev = float(schedule.abar(t)), float(schedule.abar(t_prev))
    return ((1 - abar_prev) / (1 - abar)) ** 0.5 * (1 - abar / abar_prev) ** 0.5


def one_step_sigma(schedule: Schedule, t: int, t_prev: int) -> float:
    """The std of DDPM's single step t -> t − 1 (√β̃_t, Ho et al. 2020, eq. 7), whatever t_prev:
    the per-step noise of the authors' sampler (FGG-music-code), which keeps this σ² inside the
    direction coefficient √(1-ᾱ_{t'}-σ²) even when its temperature scales the noise to 0."""
    return ddim_sigma(schedule, t, t - 1)


# Per-step noise, by name: how σ is computed and what η scales (``sample_ddim``).
NOISES = ("ddim", "one_step")


def step_noise(schedule: Schedule, t: int, t_prev: int, eta: float, noise: str = "ddim") -> tuple[float, float]:
    """(σ in the direction coefficient, std of the fresh noise) for the step t -> t_prev.
    ``ddim``: both η · ``ddim_sigma`` (η = 0 is deterministic DDIM, η = 1 DDPM-like).
    ``one_step``: ``one_step_sigma`` in the coefficient and η · it as the noise (η is the
    authors' temperature, 1 in their sampler)."""
    if noise == "ddim":
        sigma = eta * ddim_sigma(schedule, t, t_prev)
        return sigma, sigma
    if noise == "one_step":
        sigma = one_step_sigma(schedule, t, t_prev)
        return sigma, eta * sigma
    raise ValueError(f"unknown sampler noise {noise!r}; choose one of {', '.join(NOISES)}")


def _randn(shape: Sequence[int], generator, device) -> torch.Tensor:
    """Gaussian noise; ``generator`` may be one generator or one per batch item (then each
    item's noise depends on its own generator only, whatever the batch)."""
    if isinstance(generator, (list, tuple)):
        return torch.stack([torch.randn(*shape[1:], generator=g) for g in generator]).to(device)
    if generator is None:
        return torch.randn(*shape, device=device)
    # Drawn on the generator's own device (the CPU), so a seed gives the same noise anywhere.
    return torch.randn(*shape, generator=generator, device=generator.device).to(device)


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    schedule: Schedule,
    shape: Sequence[int],
    timesteps: Sequence[int],
    eta: float = 0.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    callback: StepCallback | None = None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    x_init: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    noise: str = "ddim",
) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) over the given descending timesteps; returns the final x̂₀.

    x_{t'} = √ᾱ_{t'} x̂₀ + √(1-ᾱ_{t'}-σ²) ε̂ + s z,  with ε̂ re-derived from x̂₀ and (σ, s) from
    ``step_noise``: for ``noise="ddim"`` σ = s = η √((1-ᾱ_{t'})/(1-ᾱ_t)) √(1-ᾱ_t/ᾱ_{t'}) (η = 1
    over all T timesteps is ancestral DDPM sampling); ``noise="one_step"`` is the authors'.

    Inpainting: where ``known_mask`` (broadcastable to ``shape``) is 1, x_t is replaced by a
    fresh noised copy of ``known`` before every denoiser call, and the output keeps ``known``.
    All noise comes from ``generator`` (one, or a list with one per item), so a seed
    reproduces the sample bit for bit.
    """
    timesteps = list(timesteps)
    if any(a <= b for a, b in pairwise(timesteps)):
        raise ValueError("timesteps must be strictly decreasing")
    x = _randn(shape, generator, device) if x_init is None else x_init.clone()
    if (known is None) != (known_mask is None):
        raise ValueError("inpainting needs both known and known_mask")
    batch = shape[0]
    x0 = x
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        if known is not None and known_mask is not None:
            fresh = _randn(shape, generator, device)
            x = torch.where(known_mask.bool(), schedule.add_noise(known, fresh, torch.tensor(t)), x)
        t_batch = torch.full((batch,), t, dtype=torch.long, device=device)
        x0 = denoiser(x, t_batch)  # (B, 2, T, P)
        if callback is not None:
            callback(i, t, x, x0)
        if t_prev < 0:
            break
        eps = schedule.eps_from_x0(x, x0, t_batch)
        abar_prev = float(schedule.abar(t_prev))
        sigma, spread = step_noise(schedule, t, t_prev, eta, noise)
        x = abar_prev**0.5 * x0 + max(1 - abar_prev - sigma**2, 0.0) ** 0.5 * eps
        if spread > 0:
            x = x + spread * _randn(shape, generator, device)
    if known is not None and known_mask is not None:
        x0 = torch.where(known_mask.bool(), known, x0)
    return x0


def sample_ddpm(denoiser: Denoiser, schedule: Schedule, shape: Sequence[int], **kwargs) -> torch.Tensor:
    """Full ancestral DDPM sampling: every timestep, η = 1."""
    return sample_ddim(denoiser, schedule, shape, list(range(schedule.num_timesteps - 1, -1, -1)), eta=1.0, **kwargs)
