"""Fine-grained guidance for the melody's shape: its register, one note at a time, its rhythm,
a chord tone where a note starts on beat 1 or 3 — each stated per step and per pitch, and
enforced exactly by editing x̂₀ at every sampling step, as FGG's pitch projection enforces the
allowed pitches (Zhu et al. 2025, Sec. 4). The last step's x̂₀ is the output, so what the edit
guarantees holds for the output; the sampler re-derives ε from the edited x̂₀, so a step costs
what it did.

A melody rhythm is one symbol per 16th step: ``REST``, ``START`` (a note begins) or ``HOLD``
(the note sounding goes on). Given a rhythm (``pin_rhythm``), the model keeps the choice of
pitches: each note takes the pitch the model rates highest (its onset value plus its sustain
values over the note) among the pitches open — allowed and in the register — over the whole
note (at a strong beat's start, the chord's tones among them: ``strong_beat_starts``).
Without one (``free_rhythm``), the model keeps the rhythm too, within two bounds: at most one
melody note sounds at a step, and every bar has at least ``min_starts`` note starts.

Both end in ``pin``: one melody pixel per sounding step is raised above the note threshold,
every other melody pixel is lowered to it or below; a pixel already on the right side of the
threshold keeps its value (the smallest edit that meets the constraint).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from fgg.diffusion import Denoiser
from fgg.guidance import pitch_mask
from fgg.pianoroll import LOWEST_PITCH, N_PITCHES, NOTE_THRESHOLD, STEPS_PER_BAR, STEPS_PER_BEAT

REST, START, HOLD = 0, 1, 2
NO_PITCH = -1
STRONG_BEATS = (0, 2)  # beats 1 and 3 of a 4/4 bar
# An octave and a semitone, F4-F5, around where POP909's training melodies sit 4 bars at a time
# (the median midpoint of their 4-bar spans is MIDI 71.5, their median range 12 semitones:
# ``python -m fgg.melody_rhythms --build``, assets/melody_rhythms.json "melody_four_bars"), so a
# 4-bar melody spans at most 12 semitones; every pitch class has a place in it.
DEFAULT_REGISTER = (65, 77)


@dataclass(frozen=True)
class MelodyShape:
    """What a generated melody must be: inside MIDI ``low``-``high``, one note at a time, in
    ``rhythm`` ((T,) or (B, T) ``REST``/``START``/``HOLD``) or, without one, with at least
    ``min_starts`` note starts per bar."""

    low: int = DEFAULT_REGISTER[0]
    high: int = DEFAULT_REGISTER[1]
    rhythm: np.ndarray | None = None
    min_starts: int = 1
    # (T, 12) or (B, T, 12) bool chord pitch classes: a note starting on beat 1 or 3 under a
    # chord takes one of its tones (where one is open); None: no such rule
    chord_tones: np.ndarray | None = None

    def steps(self, window: slice) -> MelodyShape:
        """The shape of the steps in ``window`` (a 4-bar window of a longer piece)."""
        rhythm = None if self.rhythm is None else self.rhythm[..., window]
        tones = None if self.chord_tones is None else self.chord_tones[..., window, :]
        return replace(self, rhythm=rhythm, chord_tones=tones)

    def denoiser(self, denoiser: Denoiser, allowed: torch.Tensor, channel: int = 0) -> Denoiser:
        """``melody_shape_denoiser`` for pixels ``allowed`` (B, T, P) bool (FGG's)."""
        open_pixels = allowed & register_window(self.low, self.high, allowed.device)  # (B, T, P)
        start_pixels = open_pixels
        if self.chord_tones is not None:
            tones = torch.as_tensor(np.asarray(self.chord_tones, dtype=bool), device=allowed.device)
            start_pixels = strong_beat_starts(open_pixels, tones.expand(*allowed.shape[:2], 12))
        rhythm = None
        if self.rhythm is not None:
            rhythm = torch.as_tensor(self.rhythm, device=allowed.device).expand(allowed.shape[:2])  # (B, T)
        return melody_shape_denoiser(denoiser, open_pixels, rhythm, self.min_starts, channel, start_pixels)


def strong_beat_starts(open_pixels: torch.Tensor, chord_tones: torch.Tensor) -> torch.Tensor:
    """(B, T, P) pixels where a melody note may start: ``open_pixels``, narrowed to the chord's
    tones (``chord_tones`` (B, T, 12) bool) on beats 1 and 3 of every bar, where that leaves one
    open (a scale without the chord's tones keeps the pitch guarantee first)."""
    t = open_pixels.shape[1]
    tone_pixels = pitch_mask(chord_tones) & open_pixels  # (B, T, P)
    strong = torch.zeros(t, dtype=torch.bool, device=open_pixels.device)
    for beat in STRONG_BEATS:
        strong[beat * STEPS_PER_BEAT :: STEPS_PER_BAR] = True
    narrowed = strong[None, :, None] & tone_pixels.any(-1, keepdim=True)  # (B, T, 1)
    return torch.where(narrowed, tone_pixels, open_pixels)


def register_window(low: int, high: int, device=None) -> torch.Tensor:
    """(P,) bool: the roll's pitches from MIDI ``low`` to ``high`` inclusive. At least an octave
    wide, so every pitch class has a place in it."""
    if high - low < 11:
        raise ValueError(f"a melody register needs at least an octave, got MIDI {low}-{high}")
    midi = torch.arange(N_PITCHES, device=device) + LOWEST_PITCH
    return (midi >= low) & (midi <= high)


def pin(
    x0: torch.Tensor,
    pitch: torch.Tensor,
    kind: torch.Tensor,
    channel: int = 0,
    threshold: float = NOTE_THRESHOLD,
    margin: float = 0.01,
) -> torch.Tensor:
    """x̂₀ (B, C, T, P) with the melody track at ``channel`` (onset) and ``channel + 1``
    (sustain) edited to exactly the notes given by ``pitch`` (B, T) pixel index or
    ``NO_PITCH`` and ``kind`` (B, T) ``REST``/``START``/``HOLD``: the onset pixel of each
    ``START`` and the sustain pixel of each ``HOLD`` end ≥ threshold + margin, every other
    melody pixel ≤ threshold."""
    onehot = torch.nn.functional.one_hot(pitch.clamp(min=0), x0.shape[-1]).bool() & (pitch >= 0)[..., None]  # (B, T, P)
    out = x0.clone()
    for offset, wanted in ((0, START), (1, HOLD)):
        on = onehot & (kind == wanted)[..., None]  # (B, T, P)
        values = x0[:, channel + offset]
        out[:, channel + offset] = torch.where(on, values.clamp(min=threshold + margin), values.clamp(max=threshold))
    return out


def pin_rhythm(
    x0: torch.Tensor,
    rhythm: torch.Tensor,
    open_pixels: torch.Tensor,
    channel: int = 0,
    start_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes of a given melody ``rhythm`` (B, T), their pitches chosen from x̂₀ (B, C, T, P)
    among ``open_pixels`` (B, T, P) (and at a note's start among ``start_pixels``, a subset;
    default all open): returns (pitch, kind), both (B, T), for ``pin``.

    A note is a ``START`` and the ``HOLD`` steps right after it (a ``HOLD`` after a rest is a
    rest). Its pitch is the open pitch of highest onset + summed sustain over the note among
    those open at every one of its steps; if none is (a chord change with no pitch in common),
    among those open at its start, and the note is cut at its first step where the pitch closes
    — the pitch guarantee comes first."""
    start_pixels = open_pixels if start_pixels is None else start_pixels
    onset, sustain = x0[:, channel], x0[:, channel + 1]  # (B, T, P)
    b, t, p = onset.shape
    steps = torch.arange(t, device=x0.device).expand(b, t)
    starts, holds = rhythm == START, rhythm == HOLD  # (B, T)
    note_start = torch.where(starts, steps, -1).cummax(dim=1).values  # the latest START at or before t
    last_rest = torch.where(~(starts | holds), steps, -1).cummax(dim=1).values
    in_note = (starts | holds) & (note_start > last_rest)
    note = torch.where(in_note, note_start, steps)  # (B, T) each step's note, by its start step
    index = note[..., None].expand(b, t, p)
    open_all_along = torch.ones(b, t, p, dtype=torch.uint8, device=x0.device).scatter_reduce(
        1, index, (open_pixels | ~in_note[..., None]).to(torch.uint8), reduce="amin"
    )  # (B, T, P) at each note's start: open at all of its steps
    rating = torch.zeros_like(onset).scatter_add(
        1, index, torch.where(starts[..., None], onset, torch.where(in_note[..., None], sustain, 0.0))
    )  # (B, T, P) at each note's start: onset + summed sustain
    candidates = open_all_along.bool() & start_pixels
    candidates = torch.where(candidates.any(-1, keepdim=True), candidates, start_pixels)
    chosen = rating.masked_fill(~candidates, float("-inf")).argmax(-1)  # (B, T), meaningful at starts
    pitch = torch.gather(chosen, 1, note)  # (B, T) the pitch of each step's note
    closed = in_note & ~torch.gather(open_pixels, 2, pitch[..., None])[..., 0]
    closures = closed.long().cumsum(1)
    before_note = torch.gather(closures - closed.long(), 1, note)
    alive = in_note & (closures == before_note)  # no closure from the note's start to here
    kind = torch.where(alive, torch.where(starts, START, HOLD), REST)
    return torch.where(alive, pitch, NO_PITCH), kind


def free_rhythm(
    x0: torch.Tensor,
    open_pixels: torch.Tensor,
    min_starts: int = 1,
    channel: int = 0,
    threshold: float = NOTE_THRESHOLD,
    start_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The melody x̂₀ (B, C, T, P) reads as, one note at a time: returns (pitch, kind) (B, T)
    for ``pin``. Step by step, a sounding candidate is an onset above the threshold where a
    note may start (``start_pixels``, default ``open_pixels``) or an open sustain continuing
    the note before; of several, the highest value wins. Then every bar with fewer than
    ``min_starts`` starts gets more, at its silent steps where an onset that may start is rated
    highest, each held while the next steps stay silent (up to a beat)."""
    start_pixels = open_pixels if start_pixels is None else start_pixels
    onset, sustain = x0[:, channel], x0[:, channel + 1]  # (B, T, P)
    b, t, p = onset.shape
    pitch = torch.full((b, t), NO_PITCH, dtype=torch.long, device=x0.device)
    kind = torch.full((b, t), REST, dtype=torch.long, device=x0.device)
    starting = (onset > threshold) & start_pixels  # (B, T, P)
    going_on = (sustain > threshold) & open_pixels
    previous = torch.full((b,), NO_PITCH, dtype=torch.long, device=x0.device)
    rows = torch.arange(b, device=x0.device)
    for step in range(t):  # a note goes on only from the step before: a recurrence over time
        carries = (previous >= 0) & going_on[rows, step, previous.clamp(min=0)]
        start_value = onset[:, step].masked_fill(~starting[:, step], float("-inf"))
        best_start, best_pitch = start_value.max(-1)  # (B,)
        carry_value = torch.where(carries, sustain[rows, step, previous.clamp(min=0)], float("-inf"))
        starts = best_start > carry_value
        sounding = starts | carries
        pitch[:, step] = torch.where(starts, best_pitch, torch.where(carries, previous, NO_PITCH))
        kind[:, step] = torch.where(starts, START, torch.where(carries, HOLD, REST))
        previous = torch.where(sounding, pitch[:, step], NO_PITCH)
    return _at_least(onset, open_pixels, start_pixels, pitch, kind, min_starts)


def _at_least(onset, open_pixels, start_pixels, pitch, kind, min_starts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``min_starts`` starts in every bar: the missing ones added at silent steps (see ``free_rhythm``)."""
    b, t, _ = onset.shape
    bars = t // STEPS_PER_BAR
    rating, best = onset.masked_fill(~start_pixels, float("-inf")).max(-1)  # (B, T)
    silent = kind == REST
    rating = rating.masked_fill(~silent, float("-inf")).view(b, bars, STEPS_PER_BAR)
    have = (kind == START).view(b, bars, STEPS_PER_BAR).sum(-1, keepdim=True)  # (B, bars, 1)
    rank = rating.argsort(-1, descending=True).argsort(-1)
    added = ((rank < (min_starts - have)) & torch.isfinite(rating)).view(b, t)  # (B, T)
    pitch, kind = pitch.clone(), kind.clone()
    pitch[added], kind[added] = best[added], START
    held_pitch = torch.where(added, best, NO_PITCH)
    for _ in range(STEPS_PER_BEAT - 1):  # hold each added note while the next step is silent
        held_pitch = torch.nn.functional.pad(held_pitch[:, :-1], (1, 0), value=NO_PITCH)
        holds = (held_pitch >= 0) & (kind == REST)
        holds &= torch.gather(open_pixels, 2, held_pitch.clamp(min=0)[..., None])[..., 0]
        pitch[holds], kind[holds] = held_pitch[holds], HOLD
        held_pitch = torch.where(holds, held_pitch, NO_PITCH)
    return pitch, kind


def melody_shape_denoiser(
    denoiser: Denoiser,
    open_pixels: torch.Tensor,
    rhythm: torch.Tensor | None = None,
    min_starts: int = 1,
    channel: int = 0,
    start_pixels: torch.Tensor | None = None,
) -> Denoiser:
    """Wrap a denoiser (after FGG's pitch projection) so that every x̂₀'s melody track is one
    note at a time, inside ``open_pixels`` (B, T, P): the allowed pitches within the register,
    its notes starting inside ``start_pixels`` (default: anywhere open), in ``rhythm`` (B, T)
    if given, else the model's own with ``min_starts`` per bar."""

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = denoiser(x_t, t)
        if rhythm is None:
            pitch, kind = free_rhythm(x0, open_pixels, min_starts, channel, start_pixels=start_pixels)
        else:
            pitch, kind = pin_rhythm(x0, rhythm, open_pixels, channel, start_pixels)
        return pin(x0, pitch, kind, channel)

    return denoise
