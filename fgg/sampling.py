"""Sampling a batch of 4-bar windows: the conditions laid out for a mode, FGG's pixel mask, and
the denoiser stack (network → classifier-free guidance → FGG) handed to the solver
(``fgg.diffusion.SOLVERS``: DDIM, the paper's, or DPM-Solver++(2M)).

The evaluation's systems and ``fgg.generate.Generator`` both sample through ``sample_batch``;
they differ only in what they pass (FGG on or off, a known region to inpaint, an observer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fgg.condition import chord_condition, melody_condition, null_melody_condition, null_rhythm_condition
from fgg.diffusion import SOLVERS, Schedule, StepCallback
from fgg.guidance import cfg_denoiser, fgg_denoiser, graded_allowed, pitch_mask
from fgg.melody_shape import MelodyShape
from fgg.modes import Mode
from fgg.precision import network


@dataclass(frozen=True)
class SamplingOptions:
    cfg_scale: float = 7.5
    cfg_rescale: float = 0.7
    fgg: bool = True
    strength: float = 1.0
    force_rhythm: bool = True  # with FGG and a rhythm: enforce the onset counts exactly
    steps: int = 10
    eta: float = 0.0
    noise: str = "ddim"  # per-step noise (fgg.diffusion.NOISES): "one_step" is the authors' sampler
    solver: str = "ddim"  # fgg.diffusion.SOLVERS: "ddim" (the paper's) or "dpmpp_2m"
    precision: str = "fp32"  # the network's, resolved ("fp32" | "bf16"; fgg.precision)


def build_conditions(
    chroma: np.ndarray, counts: np.ndarray | None, melody: np.ndarray | None, mode: Mode
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 12) chroma, (B, T) onset counts or None (null rhythm), (B, 2, T, P) melody roll or
    None (null melody) -> (cond, null) float tensors of ``mode``'s condition channels
    (``Mode.condition``): (B, 4, T, P) for the accompaniment, (B, 2, T, P) when the mode writes
    the melody. ``null`` drops the rhythm and the melody (classifier-free guidance)."""
    chroma = np.asarray(chroma, dtype=np.float32)
    b, n_steps = chroma.shape[:2]
    null_chord = torch.from_numpy(null_rhythm_condition(chroma))  # (B, 2, T, P)
    null_melody = torch.from_numpy(null_melody_condition(n_steps, (b,)))  # (B, 2, T, P)
    chord = null_chord if counts is None else torch.from_numpy(chord_condition(chroma, counts))
    given = null_melody if melody is None else torch.from_numpy(melody_condition(melody))
    cond = mode.condition({"chord": chord, "melody": given})
    return cond, mode.condition({"chord": null_chord, "melody": null_melody})


def fgg_pixel_mask(allowed_pcs, chroma, root, strength: float = 1.0) -> torch.Tensor:
    """(B, T, 12) allowed pitch classes, (B, T, 12) chord chroma, (B, T) roots -> (B, T, P)
    bool pixels that FGG enforces at ``strength`` (``fgg.guidance.graded_allowed``)."""
    graded = graded_allowed(
        torch.as_tensor(np.asarray(allowed_pcs)),
        torch.as_tensor(np.asarray(chroma)),
        torch.as_tensor(np.asarray(root).astype(np.int64)),
        strength,
    )
    return pitch_mask(graded)


@torch.inference_mode()
def sample_batch(
    model: torch.nn.Module,
    schedule: Schedule,
    cond: torch.Tensor,
    null: torch.Tensor,
    allowed: torch.Tensor,
    counts: torch.Tensor | None,
    x_init: torch.Tensor,
    options: SamplingOptions = SamplingOptions(),
    generator: torch.Generator | list | None = None,
    callback: StepCallback | None = None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    before_fgg: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    melody_shape: MelodyShape | None = None,
) -> torch.Tensor:
    """Sample a batch of 4-bar windows; returns the final x̂₀ (B, C, T, P) on the CPU.

    cond/null the mode's condition channels (``build_conditions``), allowed
    (B, T, P) bool pixels, counts (B, T) rhythm to enforce on the accompaniment (or None),
    x_init (B, C, T, P) starting noise, C = 2 per generated track with the accompaniment last
    (drawn by the caller so that each item's seed decides its sample whatever the batch). ``known``/``known_mask``
    inpaint a region (see ``sample_ddim``). FGG runs when ``options.fgg`` and
    ``options.strength`` > 0 (strength 0 is the unguided sampler, bit for bit); ``allowed`` is
    then the mask for that strength (``fgg_pixel_mask``). ``before_fgg(x_t, x̂₀)`` sees every
    step's prediction before FGG edits it (the evaluation measures the edit with it). With FGG,
    ``melody_shape`` (a mode that writes the melody: its track first) also edits the melody's
    register, monophony and rhythm (``fgg.melody_shape``)."""
    device = next(iter(model.parameters()), torch.zeros(0)).device
    null_cond = null.to(device) if options.cfg_scale != 1.0 else None
    denoiser = cfg_denoiser(
        network(model, options.precision), schedule, cond.to(device), null_cond, options.cfg_scale, options.cfg_rescale
    )
    if before_fgg is not None:
        denoiser = _observed(denoiser, before_fgg)
    if options.fgg and options.strength > 0:
        force = counts.to(device) if (counts is not None and options.force_rhythm) else None
        denoiser = fgg_denoiser(denoiser, allowed.to(device), force, onset_channel=x_init.shape[1] - 2)
        if melody_shape is not None:
            denoiser = melody_shape.denoiser(denoiser, allowed.to(device))
    solver = SOLVERS[options.solver]
    out = solver.sample(
        denoiser,
        schedule,
        tuple(x_init.shape),
        solver.timesteps(options.steps),
        eta=options.eta,
        noise=options.noise,
        generator=generator,
        callback=callback,
        known=None if known is None else known.to(device),
        known_mask=None if known_mask is None else known_mask.to(device),
        x_init=x_init.to(device),
        device=device,
    )
    return out.float().cpu()


def _observed(denoiser, observe):
    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = denoiser(x_t, t)
        observe(x_t, x0)
        return x0

    return denoise
