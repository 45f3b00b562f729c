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

import math
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


def logsnr_timesteps(steps: int, schedule: Schedule | None = None) -> list[int]:
    """Descending timesteps for ``steps`` solver steps from the paper's first (999) to its last
    (13), evenly spaced in log-SNR λ = log(√ᾱ/√(1-ᾱ)) (the spacing DPM-Solver is derived for;
    a grid down to t = 0 makes its last step too long to extrapolate over)."""
    if not 1 <= steps <= PAPER_TIMESTEPS[-1] - PAPER_TIMESTEPS[0] + 1:
        raise ValueError(f"steps must be in 1..{PAPER_TIMESTEPS[-1] - PAPER_TIMESTEPS[0] + 1}, got {steps}")
    abar = (schedule or Schedule.paper()).alphas_cumprod
    lam = 0.5 * torch.log(abar / (1 - abar))  # (T,) falling with t
    first, last = PAPER_TIMESTEPS[-1], PAPER_TIMESTEPS[0]
    targets = torch.linspace(float(lam[first]), float(lam[last]), steps, dtype=torch.float64)
    grid = [int((lam[last : first + 1] - v).abs().argmin()) + last for v in targets]
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


# One step of a sampler: (x_t, x̂₀ at t, t, t') -> x_{t'}.
Update = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]


@torch.no_grad()
def _solve(
    denoiser: Denoiser,
    schedule: Schedule,
    shape: Sequence[int],
    timesteps: Sequence[int],
    update: Update,
    generator,
    callback: StepCallback | None,
    known: torch.Tensor | None,
    known_mask: torch.Tensor | None,
    x_init: torch.Tensor | None,
    device: str | torch.device,
) -> torch.Tensor:
    """The loop every sampler shares: from x_T (drawn, or ``x_init``), at each timestep put a
    fresh noised copy of ``known`` where ``known_mask`` is 1, ask the denoiser for x̂₀ (which
    ``callback(i, t, x_t, x̂₀)`` sees), and step to the next timestep with ``update``; returns
    the last x̂₀, the known region kept."""
    timesteps = list(timesteps)
    if any(a <= b for a, b in pairwise(timesteps)):
        raise ValueError("timesteps must be strictly decreasing")
    if (known is None) != (known_mask is None):
        raise ValueError("inpainting needs both known and known_mask")
    x = _randn(shape, generator, device) if x_init is None else x_init.clone()
    x0 = x
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        if known is not None and known_mask is not None:
            fresh = _randn(shape, generator, device)
            x = torch.where(known_mask.bool(), schedule.add_noise(known, fresh, torch.tensor(t)), x)
        x0 = denoiser(x, torch.full((shape[0],), t, dtype=torch.long, device=device))  # (B, C, T, P)
        if callback is not None:
            callback(i, t, x, x0)
        if t_prev < 0:
            break
        x = update(x, x0, t, t_prev)
    if known is not None and known_mask is not None:
        x0 = torch.where(known_mask.bool(), known, x0)
    return x0


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

    def step(x: torch.Tensor, x0: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
        eps = schedule.eps_from_x0(x, x0, torch.full((shape[0],), t, dtype=torch.long, device=device))
        abar_prev = float(schedule.abar(t_prev))
        sigma, spread = step_noise(schedule, t, t_prev, eta, noise)
        x = abar_prev**0.5 * x0 + max(1 - abar_prev - sigma**2, 0.0) ** 0.5 * eps
        return x + spread * _randn(shape, generator, device) if spread > 0 else x

    return _solve(denoiser, schedule, shape, timesteps, step, generator, callback, known, known_mask, x_init, device)


def sample_dpmpp_2m(
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
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), a second-order multistep solver of the
    probability-flow ODE over the same denoiser; returns the final x̂₀. With λ = log(√ᾱ/√(1-ᾱ)),
    h_i = λ_{t_i} − λ_{t_{i−1}} and r_i = h_{i−1}/h_i:

    x_{t_i} = √((1-ᾱ_{t_i})/(1-ᾱ_{t_{i−1}})) x_{t_{i−1}} + √ᾱ_{t_i} (1 − e^{−h_i}) D_i,
    D_i = (1 + 1/(2r_i)) x̂₀(t_{i−1}) − 1/(2r_i) x̂₀(t_{i−2})   (D_1 = x̂₀(t_0): a DDIM step).

    x̂₀ is whatever the denoiser returns — FGG's edited prediction — so the solver extrapolates
    from edited predictions only, and the output (the last x̂₀) keeps FGG's guarantee. It is
    deterministic (``eta`` must be 0; ``noise`` is accepted for the common signature);
    inpainting (``known``/``known_mask``) as in ``sample_ddim``."""
    if eta != 0:
        raise ValueError(f"dpmpp_2m is deterministic: eta must be 0, got {eta}")
    before: list[tuple[torch.Tensor, float]] = []  # (x̂₀, h) of the step before

    def step(x: torch.Tensor, x0: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
        abar, abar_prev = float(schedule.abar(t)), float(schedule.abar(t_prev))
        h = 0.5 * math.log(abar_prev / (1 - abar_prev)) - 0.5 * math.log(abar / (1 - abar))
        direction = x0
        if before:
            r = before[-1][1] / h
            direction = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * before[-1][0]
        before[:] = [(x0, h)]
        return ((1 - abar_prev) / (1 - abar)) ** 0.5 * x + abar_prev**0.5 * -math.expm1(-h) * direction

    return _solve(denoiser, schedule, shape, timesteps, step, generator, callback, known, known_mask, x_init, device)


@dataclass(frozen=True)
class Solver:
    """A sampler by name: ``sample(denoiser, schedule, shape, timesteps, **options) -> x̂₀`` and
    the timesteps it takes for a number of steps."""

    sample: Callable[..., torch.Tensor]
    timesteps: Callable[[int], list[int]]
    takes_noise: bool  # whether η > 0 (per-step noise) means anything to it
    label: str  # its name for people


SOLVERS = {
    "ddim": Solver(sample_ddim, sampling_timesteps, True, "DDIM"),  # the paper's 10 timesteps for 10 steps
    "dpmpp_2m": Solver(sample_dpmpp_2m, logsnr_timesteps, False, "DPM-Solver++(2M)"),
}


def sample_ddpm(denoiser: Denoiser, schedule: Schedule, shape: Sequence[int], **kwargs) -> torch.Tensor:
    """Full ancestral DDPM sampling: every timestep, η = 1."""
    return sample_ddim(denoiser, schedule, shape, list(range(schedule.num_timesteps - 1, -1, -1)), eta=1.0, **kwargs)
