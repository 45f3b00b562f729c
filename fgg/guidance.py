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

from collections.abc import Callable, Iterable

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
SCALE_ALIASES = {
    "natural_minor": "minor",
    "aeolian": "minor",
    "ionian": "major",
    "chinese": "pentatonic",
    "gong": "pentatonic",
    "major_pentatonic": "pentatonic",
}

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


def _scale_table(scales: dict[str, tuple[int, ...]]) -> torch.Tensor:
    """(n_qualities, 12) bool: row q = the intervals above the root allowed for quality q."""
    table = torch.zeros(len(scales), 12, dtype=torch.bool)
    for q, intervals in enumerate(scales.values()):
        table[q, list(intervals)] = True
    return table


_SCALE_TABLE = _scale_table(CHORD_SCALES)

# The paper's table (Zhu et al. 2025, Sec. 4 / App.), written from its description: chord
# family -> scale over the root. Stricter than ours: no colour tones under min7/sus/dim
# chords, and the symmetric or ambiguous chords (aug, dim, dim7, half-dim7, min6) allow only
# their own tones. The chord's own tones are added as in ours (every chord of the paper's
# table is already inside its scale, so this changes nothing there).
PAPER_CHORD_SCALES: dict[str, tuple[int, ...]] = {
    "major": SCALES["major"],  # maj, maj6, maj7, add9, maj9, 6/9, sus2, sus4, power chord
    "minor": (0, 2, 3, 5, 7, 8, 10, 11),  # minor triad, m(add9), m(maj7): natural minor + leading tone
    "minor7": SCALES["minor"],  # min7, min9, min11: Aeolian
    "dominant": SCALES["mixolydian"],  # 7, 9, 11, 13, 7sus4
    "chord_tones": (),  # aug, dim, dim7, half-dim7, min6
    "unknown": tuple(range(12)),  # N, single notes, anything unmatched
}
PAPER_QUALITIES = tuple(PAPER_CHORD_SCALES)
_PAPER_SCALE_TABLE = _scale_table(PAPER_CHORD_SCALES)
SCALE_TABLES = ("ours", "paper")


def _relative_chroma(root: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """(..., 12) chroma rotated so that index i is the interval i semitones above the root."""
    idx = (torch.arange(12, device=chroma.device) + root.clamp(min=0)[..., None]) % 12
    return torch.gather(chroma, -1, idx)


def _quality_index(qualities: tuple[str, ...], name: str, device) -> torch.Tensor:
    return torch.tensor(qualities.index(name), device=device)


def chord_quality(root: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Quality index into ``QUALITIES`` for each chord, from its tones relative to the root.

    root (...,) long with -1 = no chord; chroma (..., 12) absolute pitch classes.
    Rules in order: M3 + #5 without P5 -> aug; M3 + b7 -> dom7; M3 -> maj; m3 + b5 without
    P5 -> hdim7 (with b7) or dim; m3 -> min; 2 or 4 without a 3rd -> sus; else unknown.
    """
    root = torch.as_tensor(root, dtype=torch.long)
    chroma = torch.as_tensor(chroma).bool()
    rel = _relative_chroma(root, chroma)  # (..., 12)
    m3, M3, b5, P5, s5, b7 = rel[..., 3], rel[..., 4], rel[..., 6], rel[..., 7], rel[..., 8], rel[..., 10]
    sus = ~m3 & ~M3 & (rel[..., 2] | rel[..., 5])

    def idx(name):
        return _quality_index(QUALITIES, name, root.device)

    q = torch.full(root.shape, QUALITIES.index("unknown"), dtype=torch.long, device=root.device)
    # Assign in reverse priority so the earliest rule wins.
    q = torch.where(sus, idx("sus"), q)
    q = torch.where(m3 & ~M3, idx("min"), q)
    q = torch.where(m3 & ~M3 & b5 & ~P5, torch.where(b7, idx("hdim7"), idx("dim")), q)
    q = torch.where(M3, idx("maj"), q)
    q = torch.where(M3 & b7, idx("dom7"), q)
    q = torch.where(M3 & s5 & ~P5, idx("aug"), q)
    return torch.where(root < 0, idx("unknown"), q)


def paper_chord_quality(root: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Quality index into ``PAPER_QUALITIES`` (the paper's families), relative to the root.

    Rules in order: no chord -> unknown; 3rd + #5 without P5 (aug) or m3 + b5 without P5
    (dim, dim7, half-dim7) -> chord_tones; M3 + b7 -> dominant; M3 -> major; m3 + M6 without
    b7 (min6) -> chord_tones; m3 + b7 -> minor7; m3 -> minor; no 3rd but P5 (sus2, sus4,
    power chord) -> dominant with b7, else major; anything else (single notes) -> unknown.
    """
    root = torch.as_tensor(root, dtype=torch.long)
    chroma = torch.as_tensor(chroma).bool()
    rel = _relative_chroma(root, chroma)  # (..., 12)
    m3, M3, b5, P5, s5, M6, b7 = (rel[..., i] for i in (3, 4, 6, 7, 8, 9, 10))
    minor = m3 & ~M3

    def idx(name):
        return _quality_index(PAPER_QUALITIES, name, root.device)

    q = torch.full(root.shape, PAPER_QUALITIES.index("unknown"), dtype=torch.long, device=root.device)
    q = torch.where(~m3 & ~M3 & P5, torch.where(b7, idx("dominant"), idx("major")), q)
    q = torch.where(minor, torch.where(b7, idx("minor7"), idx("minor")), q)
    q = torch.where(minor & M6 & ~b7, idx("chord_tones"), q)
    q = torch.where(M3, torch.where(b7, idx("dominant"), idx("major")), q)
    q = torch.where(((M3 & s5) | (minor & b5)) & ~P5, idx("chord_tones"), q)
    return torch.where(root < 0, idx("unknown"), q)


_CHORD_TABLES = {"ours": (chord_quality, _SCALE_TABLE), "paper": (paper_chord_quality, _PAPER_SCALE_TABLE)}


def chord_allowed_pitch_classes(root: torch.Tensor, chroma: torch.Tensor, table: str = "ours") -> torch.Tensor:
    """(..., T) roots and (..., T, 12) chroma -> (..., T, 12) bool allowed pitch classes:
    the chord-quality scale on the root (``table`` = "ours", ``CHORD_SCALES``, or "paper",
    ``PAPER_CHORD_SCALES``), plus the chord's own tones; all for ``N``."""
    root = torch.as_tensor(root, dtype=torch.long)
    chroma = torch.as_tensor(chroma).bool()
    if table not in _CHORD_TABLES:
        raise ValueError(f"unknown scale table {table!r}; choose one of {', '.join(SCALE_TABLES)}")
    quality_of, scales = _CHORD_TABLES[table]
    scale = scales.to(root.device)[quality_of(root, chroma)]  # (..., T, 12) relative to the root
    absolute_idx = (torch.arange(12, device=root.device) - root.clamp(min=0)[..., None]) % 12  # pc -> interval
    allowed = torch.gather(scale, -1, absolute_idx)
    return allowed | chroma | (root < 0)[..., None]


def scale_pitch_classes(scale: str | Iterable, tonic: int | str = 0) -> torch.Tensor:
    """(12,) bool pitch classes of a named scale on ``tonic`` (pc or note name), or of an
    explicit set given as pitch classes / note names (then ``tonic`` is ignored)."""
    if isinstance(scale, str):
        key = scale.strip().lower().replace(" ", "_").replace("-", "_")
        key = SCALE_ALIASES.get(key, key)
        if key not in SCALES:
            raise ValueError(
                f"unknown scale {scale!r}; choose one of {', '.join(sorted(SCALES))} or give pitch classes"
            )
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
    pcs_of_pixels = (torch.arange(N_PITCHES, device=allowed_pcs.device) + LOWEST_PITCH) % 12
    return allowed_pcs[..., pcs_of_pixels]


def project_pitch(x0: torch.Tensor, allowed: torch.Tensor, threshold: float = NOTE_THRESHOLD) -> torch.Tensor:
    """Clamp x̂₀ ``(B, C, T, P)`` to ≤ threshold wherever ``allowed`` ``(B, T, P)`` is False,
    on every channel — onset and sustain of each track (the paper's x̂₀ edit, Sec. 4)."""
    excess = (x0 - threshold).clamp(min=0) * (~allowed).unsqueeze(1)  # (B, C, T, P)
    return x0 - excess


def project_rhythm(
    x0: torch.Tensor,
    counts: torch.Tensor,
    allowed: torch.Tensor,
    threshold: float = NOTE_THRESHOLD,
    margin: float = 0.01,
    onset_channel: int = ONSET,
) -> torch.Tensor:
    """Force n(t) onsets per step: among allowed pitches, the n(t) largest onset values are
    raised to ≥ threshold + margin and every other onset value is lowered to ≤ threshold.

    x0 (B, C, T, P); counts (B, T) onsets wanted (capped at the number of allowed pitches);
    allowed (B, T, P) bool. Only channel ``onset_channel`` changes (the accompaniment's onsets:
    0, or 2 when the melody track comes first); values already on the right side of the
    threshold are left as they are (the smallest edit that meets the constraint).
    """
    onset = x0[:, onset_channel]  # (B, T, P)
    scores = onset.masked_fill(~allowed, float("-inf"))
    rank = scores.argsort(dim=-1, descending=True).argsort(dim=-1)  # (B, T, P) 0 = largest
    n = torch.minimum(counts.long(), allowed.sum(-1))  # (B, T)
    chosen = rank < n.unsqueeze(-1)
    out = x0.clone()
    target = torch.where(chosen, onset.clamp(min=threshold + margin), onset.clamp(max=threshold))
    out[:, onset_channel] = onset + (target - onset)  # written as an edit of x̂₀; bit-identical to earlier runs
    return out


_PC = torch.arange(12)
_CIRCULAR_DISTANCE = torch.minimum((_PC[:, None] - _PC) % 12, (_PC - _PC[:, None]) % 12)  # (12, 12) semitones


def graded_allowed(allowed: torch.Tensor, chroma: torch.Tensor, root: torch.Tensor, strength: float) -> torch.Tensor:
    """FGG strength s ∈ [0, 1] -> the pitch classes FGG enforces: at each step, of the n pitch
    classes the full set forbids, only the ⌈s·n⌉ harshest stay forbidden.

    allowed, chroma (..., T, 12) bool; root (..., T) with -1 = no chord -> (..., T, 12) bool.
    Harshness: a forbidden pitch class q is ranked by its distance in semitones to the nearest
    chord tone (1 = a semitone clash, the harshest), then by its distance to the root, then
    by q. So a low strength first removes the clashes (a b9 over the root, a natural 4th
    against a major 3rd) and leaves the milder chromatic colours to the model; s = 1 forbids
    all of them (the hard guarantee), s = 0 none.

    Why not a partial clamp: moving only part of a disallowed pixel's excess towards the 0.5
    threshold leaves it above the threshold at the last step, so every s < 1 kept exactly as
    many wrong notes as no guidance. Why not guiding only the first share s of the sampling
    steps: the unguided late steps put most wrong notes back (tried on the paper model: the
    out-of-key rate barely moved between a quarter and three quarters of the steps guided,
    then dropped to 0 at all of them). Nested forbidden sets make the trade-off graded:
    every note the mask at s forbids is also forbidden at any larger s. With FGG on and
    s > 0, the rhythm (if given) is enforced in full.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"FGG strength must be in [0, 1], got {strength}")
    allowed, chroma = torch.as_tensor(allowed).bool(), torch.as_tensor(chroma).bool()
    root = torch.as_tensor(root, dtype=torch.long)
    distance = _CIRCULAR_DISTANCE.to(allowed.device)
    to_chord = torch.where(chroma[..., None, :], distance, 12).min(-1).values  # (..., T, 12) nearest chord tone
    to_root = distance[:, root.clamp(min=0)].movedim(0, -1)  # (..., T, 12)
    harshness = to_chord * 144 + to_root * 12 + _PC.to(allowed.device)  # lower = harsher, all distinct
    forbidden = ~allowed
    rank = harshness.masked_fill(~forbidden, 10_000).argsort(-1).argsort(-1)  # 0 = harshest forbidden
    keep = torch.ceil(strength * forbidden.sum(-1, keepdim=True) - 1e-9)  # (..., T, 1) how many stay forbidden
    return ~(forbidden & (rank < keep))


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


def cfg_denoiser(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Schedule,
    cond: torch.Tensor,
    null_cond: torch.Tensor | None,
    scale: float = 7.5,
    rescale: float = 0.7,
) -> Denoiser:
    """Denoiser from the ε-UNet with classifier-free guidance; cond/null_cond (B, 4, T, P) are
    the condition channels. Conditional and null predictions share one batched forward. When
    every item's condition *is* the null condition (chords only: no melody, no rhythm), both
    predictions are the same and CFG is the identity (ε_u + w·0 = ε_c), so one forward runs."""
    if null_cond is not None and torch.equal(cond, null_cond):
        null_cond = None

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if null_cond is None or scale == 1.0:
            eps = model(torch.cat([x_t, cond], dim=1), t)
        else:
            both = torch.cat([torch.cat([x_t, cond], 1), torch.cat([x_t, null_cond], 1)])  # (2B, 6, T, P)
            eps_cond, eps_null = model(both, torch.cat([t, t])).chunk(2)
            eps = cfg_combine(eps_cond, eps_null, scale, rescale)
        return schedule.x0_from_eps(x_t, eps, t)

    return denoise


def fgg_denoiser(
    denoiser: Denoiser, allowed: torch.Tensor, counts: torch.Tensor | None = None, onset_channel: int = ONSET
) -> Denoiser:
    """Wrap a denoiser with FGG at every sampling step: pitch projection of every track onto
    ``allowed`` (B, T, P) and, if ``counts`` (B, T) is given, rhythm projection of the
    accompaniment's onsets (channel ``onset_channel``). Because the final step is projected
    too, no note can end on a disallowed pitch (the hard guarantee)."""

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = project_pitch(denoiser(x_t, t), allowed)
        return x0 if counts is None else project_rhythm(x0, counts, allowed, onset_channel=onset_channel)

    return denoise
