"""Guidance: classifier-free guidance and fine-grained guidance (FGG), as denoiser wrappers
built from pure tensor functions.

FGG (Zhu et al. 2025, Sec. 4) edits the predicted clean roll x̂₀ at every sampling step:
- pitch projection: every (time, pitch) pixel whose pitch class is not allowed at that step
  is clamped to ≤ 0.5, the note threshold — so after the last step no note can sit there;
- rhythm projection (optional): at each step exactly n(t) onset pixels, chosen among the
  allowed pitches by value, end up > 0.5 and all others ≤ 0.5;
and the sampler re-derives ε from the edited x̂₀ (``fgg.diffusion``), which keeps the cost of
a sampling step unchanged.

Allowed pitch classes come from the chord at each step (``CHORD_SCALES``, plus the chord's
own tones, bass included) or from a user scale (``SCALES``).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from fgg.chords import pitch_class
from fgg.diffusion import Denoiser, Schedule
from fgg.pianoroll import LOWEST_PITCH, N_PITCHES, NOTE_THRESHOLD, ONSET

# Scales as semitones above the tonic.
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor (Aeolian)
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),  # major pentatonic = the Chinese gong mode
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
SCALE_ALIASES = {"natural_minor": "minor", "aeolian": "minor", "ionian": "major", "chinese": "pentatonic",
                 "gong": "pentatonic", "major_pentatonic": "pentatonic"}

# Chord quality -> scale over the chord root. Why each:
# - maj: the major scale (the chord as I; IV/V readings differ by one note, and the chord's
#   own tones are always added, so a maj7 / add9 colour is never clamped);
# - min: natural minor plus the leading tone (major 7th), so both Aeolian and harmonic-minor
#   lines (V-i cadences) stay possible — the paper's minor table;
# - dom7: Mixolydian, the scale of a dominant seventh;
# - hdim7: Locrian, the scale of a half-diminished (ii in minor);
# - dim: whole-half octatonic, which contains both dim7 chords' tones and their neighbours;
# - aug: Lydian augmented (1 2 3 #4 #5 6 7), the major-key context of a passing aug triad;
# - sus: the major scale plus the flat 7th — a sus chord leaves the 3rd open and often
#   stands for V7sus4, so both I and V colours are allowed;
# - unknown (N, power chords, single notes): everything is allowed.
CHORD_SCALES: dict[str, tuple[int, ...]] = {
    "maj": SCALES["major"],
    "min": (0, 2, 3, 5, 7, 8, 10, 11),
    "dom7": SCALES["mixolydian"],
    "hdim7": SCALES["locrian"],
    "dim": (0, 2, 3, 5, 6, 8, 9, 11),
    "aug": (0, 2, 4, 6, 8, 9, 11),
    "sus": (0, 2, 4, 5, 7, 9, 10, 11),
    "unknown": tuple(range(12)),
}
QUALITIES = tuple(CHORD_SCALES)
_SCALE_TABLE = torch.zeros(len(QUALITIES), 12, dtype=torch.bool)
for _q, _intervals in enumerate(CHORD_SCALES.values()):
    _SCALE_TABLE[_q, list(_intervals)] = True


def chord_quality(root: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Quality index into ``QUALITIES`` for each chord, from its tones relative to the root.

    root (...,) long with -1 = no chord; chroma (..., 12) absolute pitch classes.
    Rules in order: M3 + #5 without P5 -> aug; M3 + b7 -> dom7; M3 -> maj; m3 + b5 without
    P5 -> hdim7 (with b7) or dim; m3 -> min; 2 or 4 without a 3rd -> sus; else unknown.
    """
    root = torch.as_tensor(root, dtype=torch.long)
    chroma = torch.as_tensor(chroma).bool()
    idx = (torch.arange(12) + root.clamp(min=0)[..., None]) % 12  # (..., 12) absolute pc of each interval
    rel = torch.gather(chroma, -1, idx)  # (..., 12) chroma relative to the root
    m3, M3, b5, P5, s5, b7 = rel[..., 3], rel[..., 4], rel[..., 6], rel[..., 7], rel[..., 8], rel[..., 10]
    sus = ~m3 & ~M3 & (rel[..., 2] | rel[..., 5])
    q = torch.full(root.shape, QUALITIES.index("unknown"), dtype=torch.long)
    # Assign in reverse priority so the earliest rule wins.
    q = torch.where(sus, QUALITIES.index("sus"), q)
    q = torch.where(m3 & ~M3, QUALITIES.index("min"), q)
    q = torch.where(m3 & ~M3 & b5 & ~P5, torch.where(b7, QUALITIES.index("hdim7"), QUALITIES.index("dim")), q)
    q = torch.where(M3, QUALITIES.index("maj"), q)
    q = torch.where(M3 & b7, QUALITIES.index("dom7"), q)
    q = torch.where(M3 & s5 & ~P5, QUALITIES.index("aug"), q)
    return torch.where(root < 0, QUALITIES.index("unknown"), q)


def chord_allowed_pitch_classes(root: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """(..., T) roots and (..., T, 12) chroma -> (..., T, 12) bool allowed pitch classes:
    the chord-quality scale on the root, plus the chord's own tones; all for ``N``."""
    root = torch.as_tensor(root, dtype=torch.long)
    chroma = torch.as_tensor(chroma).bool()
    scale = _SCALE_TABLE[chord_quality(root, chroma)]  # (..., T, 12) relative to the root
    absolute_idx = (torch.arange(12) - root.clamp(min=0)[..., None]) % 12  # pc -> interval over root
    allowed = torch.gather(scale, -1, absolute_idx)
    return allowed | chroma | (root < 0)[..., None]


def scale_pitch_classes(scale: str | Iterable, tonic: int | str = 0) -> torch.Tensor:
    """(12,) bool pitch classes of a named scale on ``tonic`` (pc or note name), or of an
    explicit set given as pitch classes / note names (then ``tonic`` is ignored)."""
    if isinstance(scale, str):
        key = scale.strip().lower().replace(" ", "_").replace("-", "_")
        key = SCALE_ALIASES.get(key, key)
        if key not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(sorted(SCALES))} "
                             "or give pitch classes")
        root = pitch_class(tonic) if isinstance(tonic, str) else int(tonic) % 12
        pcs = [(root + i) % 12 for i in SCALES[key]]
    else:
        pcs = [pitch_class(p) if isinstance(p, str) else int(p) % 12 for p in scale]
        if not pcs:
            raise ValueError("a custom scale needs at least one pitch class")
    out = torch.zeros(12, dtype=torch.bool)
    out[pcs] = True
    return out


def pitch_mask(allowed_pcs: torch.Tensor) -> torch.Tensor:
    """(..., T, 12) allowed pitch classes -> (..., T, 64) allowed pixels on the roll's pitch axis."""
    pcs_of_pixels = (torch.arange(N_PITCHES) + LOWEST_PITCH) % 12
    return allowed_pcs[..., pcs_of_pixels]


def project_pitch(x0: torch.Tensor, allowed: torch.Tensor, strength: float = 1.0,
                  threshold: float = NOTE_THRESHOLD) -> torch.Tensor:
    """Clamp x̂₀ ``(B, 2, T, P)`` to ≤ threshold wherever ``allowed`` ``(B, T, P)`` is False,
    on both channels. ``strength`` s ∈ [0, 1] moves the excess only part of the way:
    x' = x − s·max(x − threshold, 0) on disallowed pixels (s = 1: hard clamp, s = 0: no-op)."""
    excess = (x0 - threshold).clamp(min=0) * (~allowed).unsqueeze(1)  # (B, 2, T, P)
    return x0 - strength * excess


def project_rhythm(x0: torch.Tensor, counts: torch.Tensor, allowed: torch.Tensor, strength: float = 1.0,
                   threshold: float = NOTE_THRESHOLD, margin: float = 0.01) -> torch.Tensor:
    """Force n(t) onsets per step: among allowed pitches, the n(t) largest onset values are
    raised to ≥ threshold + margin and every other onset value is lowered to ≤ threshold.

    x0 (B, 2, T, P); counts (B, T) onsets wanted (capped at the number of allowed pitches);
    allowed (B, T, P) bool. Only the onset channel changes; values already on the right side
    of the threshold are left as they are (the smallest edit that meets the constraint).
    ``strength`` interpolates between x̂₀ (0) and the projected value (1).
    """
    onset = x0[:, ONSET]  # (B, T, P)
    scores = onset.masked_fill(~allowed, float("-inf"))
    rank = scores.argsort(dim=-1, descending=True).argsort(dim=-1)  # (B, T, P) 0 = largest
    n = torch.minimum(counts.long(), allowed.sum(-1))  # (B, T)
    chosen = rank < n.unsqueeze(-1)
    target = torch.where(chosen, onset.clamp(min=threshold + margin), onset.clamp(max=threshold))
    out = x0.clone()
    out[:, ONSET] = onset + strength * (target - onset)
    return out


def cfg_combine(eps_cond: torch.Tensor, eps_null: torch.Tensor, scale: float, rescale: float = 0.0) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ε = ε_u + w(ε_c − ε_u), then the
    std rescale of Lin et al. 2023 (eq. 15–16): ε ← φ·ε·σ(ε_c)/σ(ε) + (1−φ)·ε, σ per sample.
    w = 1 returns ε_c exactly; φ = 0 is plain CFG."""
    if scale == 1.0:
        return eps_cond
    eps = eps_null + scale * (eps_cond - eps_null)
    if rescale > 0:
        dims = tuple(range(1, eps.dim()))
        ratio = eps_cond.std(dim=dims, keepdim=True) / eps.std(dim=dims, keepdim=True).clamp(min=1e-8)
        eps = rescale * (eps * ratio) + (1 - rescale) * eps
    return eps


def cfg_denoiser(model: torch.nn.Module, schedule: Schedule, cond: torch.Tensor, null_cond: torch.Tensor | None,
                 scale: float = 7.5, rescale: float = 0.7) -> Denoiser:
    """Denoiser from the ε-UNet with classifier-free guidance; cond/null_cond (B, 4, T, P) are
    the condition channels. Conditional and null predictions share one batched forward."""
    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if null_cond is None or scale == 1.0:
            eps = model(torch.cat([x_t, cond], dim=1), t)
        else:
            both = torch.cat([torch.cat([x_t, cond], 1), torch.cat([x_t, null_cond], 1)])  # (2B, 6, T, P)
            eps_cond, eps_null = model(both, torch.cat([t, t])).chunk(2)
            eps = cfg_combine(eps_cond, eps_null, scale, rescale)
        return schedule.x0_from_eps(x_t, eps, t)
    return denoise


def fgg_denoiser(denoiser: Denoiser, allowed: torch.Tensor, counts: torch.Tensor | None = None,
                 strength: float = 1.0, t_range: Sequence[int] = (0, 999)) -> Denoiser:
    """Wrap a denoiser with FGG: pitch projection onto ``allowed`` (B, T, P) and, if
    ``counts`` (B, T) is given, rhythm projection — at sampling steps whose timestep lies in
    ``t_range`` (inclusive). The hard guarantee (no note on a disallowed pitch) needs
    strength 1 and a window that contains the final timestep."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"FGG strength must be in [0, 1], got {strength}")

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = denoiser(x_t, t)
        if strength == 0.0 or not (t_range[0] <= int(t[0]) <= t_range[1]):
            return x0
        x0 = project_pitch(x0, allowed, strength)
        if counts is not None:
            x0 = project_rhythm(x0, counts, allowed, strength)
        return x0
    return denoise
