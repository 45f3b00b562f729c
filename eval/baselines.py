"""The systems compared by the evaluation: one registry, one interface.

A system is ``fn(batch: SegmentBatch, seeds: list[int], ctx: EvalContext) -> SystemOutput``:
the rolls ``(B, C, T, 64)`` bool of the batch's mode (``fgg.modes``; C = 2 per track, the
accompaniment last: 2 for the accompaniment, 4 = melody then accompaniment when the model
writes the melody too), and, for systems that correct a model prediction, the uncorrected
prediction the correction started from (to measure how much it had to edit). Every
model-based system draws item b's starting noise (C, T, P) from ``seeds[b]`` alone, so the
same (segment, seed) starts from the same x_T in every system and in any batch composition
(sampling is deterministic DDIM, η = 0). A mode lists the systems that evaluate it
(``Mode.systems``). Adding a system is one function + one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fgg.diffusion import Schedule
from fgg.guidance import chord_allowed_pitch_classes, pitch_mask
from fgg.melody_rhythms import auto_rhythm, roll_rhythm
from fgg.melody_shape import MelodyShape
from fgg.modes import ACCOMPANIMENT, Mode
from fgg.pianoroll import (
    HIGHEST_PITCH,
    LOWEST_PITCH,
    N_PITCHES,
    NOTE_THRESHOLD,
    notes_to_roll,
    roll_to_notes,
)
from fgg.sampling import SamplingOptions, build_conditions, fgg_pixel_mask, sample_batch


@dataclass
class SegmentBatch:
    melody: np.ndarray  # (B, 2, T, P) bool
    accompaniment: np.ndarray | None  # (B, 2, T, P) bool, the ground truth (None: user input)
    chroma: np.ndarray  # (B, T, 12) uint8
    root: np.ndarray  # (B, T) int8
    bass: np.ndarray  # (B, T) int8
    onset_counts: np.ndarray | None  # (B, T) accompaniment onsets per step (None: null rhythm)
    scale_table: str = "ours"  # chord -> scale table that guides and corrects (fgg.guidance)
    # True: no melody was given (the app's typed chords), so the model gets the null melody
    # condition, as in ``Generator.generate``; a POP909 segment without melody is a silent one.
    null_melody: bool = False
    mode: Mode = ACCOMPANIMENT  # what the model writes: the systems' rolls are this mode's tracks
    allowed: np.ndarray = field(init=False)  # (B, T, 12) bool chord-derived allowed pitch classes

    def __post_init__(self):
        self.allowed = chord_allowed_pitch_classes(
            torch.from_numpy(self.root.astype(np.int64)), torch.from_numpy(self.chroma), self.scale_table
        ).numpy()

    @classmethod
    def from_segments(
        cls,
        segments: dict[str, np.ndarray],
        index,
        scale_table: str = "ours",
        mode: Mode = ACCOMPANIMENT,
        rhythm: bool = True,
    ) -> SegmentBatch:
        """POP909 segments ``index``; ``rhythm=False`` gives the model the null rhythm instead
        of the segment's onset counts."""
        return cls(
            **{k: segments[k][index] for k in ("melody", "accompaniment", "chroma", "root", "bass")},
            onset_counts=segments["onset_counts"][index] if rhythm else None,
            scale_table=scale_table,
            mode=mode,
        )

    def __len__(self) -> int:
        return len(self.melody)


@dataclass
class EvalContext:
    model: torch.nn.Module
    schedule: Schedule = field(default_factory=Schedule.paper)
    options: SamplingOptions = field(default_factory=SamplingOptions)


@dataclass
class SystemOutput:
    rolls: np.ndarray  # (B, C, T, P) bool, the batch's mode's tracks
    # (B, C, T, P) bool: the model's own prediction before this system's correction (FGG's
    # projection, the inpainted region, a last-step edit); None where nothing was corrected.
    uncorrected: np.ndarray | None = None


System = Callable[[SegmentBatch, list, EvalContext], SystemOutput]


def canonical(roll: np.ndarray) -> np.ndarray:
    """Binarise a (2, T, P) roll and keep only what decodes to notes."""
    return notes_to_roll(roll_to_notes(roll > NOTE_THRESHOLD), roll.shape[1])


def canonical_tracks(roll: np.ndarray) -> np.ndarray:
    """``canonical`` of each 2-channel track of a (C, T, P) roll."""
    return np.concatenate([canonical(roll[c : c + 2]) for c in range(0, len(roll), 2)])


def split_tracks(mode: Mode, rolls: np.ndarray) -> dict[str, np.ndarray]:
    """(…, C, T, P) rolls of ``mode`` -> {track name: (…, 2, T, P)}, in the mode's order."""
    return {name: rolls[..., 2 * i : 2 * i + 2, :, :] for i, name in enumerate(mode.tracks)}


def item_generators(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def sample_system(
    batch: SegmentBatch,
    seeds: list[int],
    ctx: EvalContext,
    fgg: bool,
    rhythm: bool = True,
    inpaint_out_of_key: bool = False,
    melody_shape: MelodyShape | None = None,
) -> SystemOutput:
    """Sample with the model; for corrected sampling (FGG or inpainting) also return the last
    step's prediction before the correction, so the size of the last edit can be measured."""
    n_steps, channels = batch.chroma.shape[1], batch.mode.channels
    counts = batch.onset_counts if rhythm else None  # None (no rhythm given) -> null rhythm
    cond, null = build_conditions(batch.chroma, counts, None if batch.null_melody else batch.melody, batch.mode)
    allowed = pitch_mask(torch.from_numpy(batch.allowed))  # (B, T, P) the full set: inpainting, corrections
    guided = fgg_pixel_mask(batch.allowed, batch.chroma, batch.root, ctx.options.strength) if fgg else allowed
    known = known_mask = None
    if inpaint_out_of_key:  # disallowed pixels are a known, empty region
        known = torch.zeros(len(batch), channels, n_steps, N_PITCHES)
        known_mask = (~allowed).unsqueeze(1)  # (B, 1, T, P)
    generators = item_generators(seeds)
    x_init = torch.stack([torch.randn(channels, n_steps, N_PITCHES, generator=g) for g in generators])  # (B, C, T, P)
    raw: dict[str, torch.Tensor] = {}
    # The last step's prediction before FGG's projection / the inpainting overwrite is what
    # the unguided denoiser makes of the final x_t: the size of the last correction, for free.
    out = sample_batch(
        ctx.model,
        ctx.schedule,
        cond,
        null,
        guided,
        None if counts is None else torch.from_numpy(counts.astype(np.int64)),
        x_init,
        replace(ctx.options, fgg=fgg),
        generator=generators,
        known=known,
        known_mask=known_mask,
        before_fgg=lambda x_t, x0: raw.update(x0=x0),
        melody_shape=melody_shape,
    )
    rolls = np.stack([canonical_tracks(r) for r in out.numpy()])
    if not (fgg or inpaint_out_of_key):
        return SystemOutput(rolls)
    return SystemOutput(rolls, np.stack([canonical_tracks(r) for r in raw["x0"].float().cpu().numpy()]))


def remove_out_of_key(roll: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Delete every note that sounds on a disallowed pitch class at any of its steps."""
    notes = roll_to_notes(roll)
    keep = [allowed[s:e, p % 12].all() for s, e, p in notes]
    return notes_to_roll(notes[np.array(keep, dtype=bool)] if len(notes) else notes, roll.shape[1])


def round_out_of_key(roll: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Move every out-of-key note to the nearest pitch allowed over its whole duration on
    which no other note sounds during that duration (ties: the lower pitch), so a moved note
    never merges with or cuts a note already there; delete it if there is none."""
    notes = roll_to_notes(roll)
    ok = np.array([allowed[s:e, p % 12].all() for s, e, p in notes], dtype=bool)
    kept = [tuple(n) for n in notes[ok]] if len(notes) else []
    busy = np.zeros((roll.shape[1], N_PITCHES), dtype=bool)  # (T, P) pixels a kept note covers
    for s, e, p in kept:
        busy[s:e, p - LOWEST_PITCH] = True
    for s, e, p in notes[~ok] if len(notes) else []:
        for delta in sorted(range(-N_PITCHES, N_PITCHES + 1), key=lambda d: (abs(d), d)):
            q = p + delta
            if (
                LOWEST_PITCH <= q <= HIGHEST_PITCH
                and allowed[s:e, q % 12].all()
                and not busy[s:e, q - LOWEST_PITCH].any()
            ):
                kept.append((s, e, q))
                busy[s:e, q - LOWEST_PITCH] = True
                break
    arr = np.array(kept, dtype=np.int64).reshape(-1, 3)
    return notes_to_roll(arr, roll.shape[1])


def rule_based_accompaniment(chroma: np.ndarray, root: np.ndarray, bass: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Chord tones on the given rhythm: at each step with n > 0 onsets, the bass (or root)
    in MIDI 36–47 plus n − 1 chord tones stacked upward from G3 (55); each note lasts until
    the next onset step or chord change (at most 8 steps). No chord (N) -> silence."""
    n_steps = len(counts)
    onset_steps = [t for t in range(n_steps) if counts[t] > 0 and chroma[t].any()]
    notes = []
    for i, t in enumerate(onset_steps):
        end = onset_steps[i + 1] if i + 1 < len(onset_steps) else n_steps
        change = next((u for u in range(t + 1, end) if not np.array_equal(chroma[u], chroma[t])), end)
        end = min(change, t + 8)
        low = int(bass[t] if bass[t] >= 0 else root[t])
        notes.append((t, end, 36 + (low - 36) % 12))
        tones = np.flatnonzero(chroma[t])
        pitch = 55
        for _ in range(int(counts[t]) - 1):
            while pitch % 12 not in tones:
                pitch += 1
            if pitch > HIGHEST_PITCH:
                break
            notes.append((t, end, pitch))
            pitch += 1
    return notes_to_roll(np.array(notes, dtype=np.int64).reshape(-1, 3), n_steps)


def _fgg(batch, seeds, ctx):
    return sample_system(batch, seeds, ctx, fgg=True)


def _no_fgg(batch, seeds, ctx):
    return sample_system(batch, seeds, ctx, fgg=False)


def _last_step_remove(batch, seeds, ctx):
    return run_system("last_step_remove", batch, seeds, ctx, unguided=_no_fgg(batch, seeds, ctx).rolls)


def _last_step_round(batch, seeds, ctx):
    return run_system("last_step_round", batch, seeds, ctx, unguided=_no_fgg(batch, seeds, ctx).rolls)


def _inpaint(batch, seeds, ctx):
    return sample_system(batch, seeds, ctx, fgg=False, inpaint_out_of_key=True)


def _null_rhythm(batch, seeds, ctx):
    return sample_system(batch, seeds, ctx, fgg=True, rhythm=False)


def _fgg_melody(batch, seeds, ctx):
    return sample_system(batch, seeds, ctx, fgg=True, melody_shape=_melody_shape(batch, None))


def _fgg_melody_rhythm(batch, seeds, ctx):
    if batch.null_melody:
        raise ValueError("fgg_melody_rhythm needs a POP909 segment (it takes the rhythm of the segment's melody)")
    rhythm = np.stack([roll_rhythm(m) for m in batch.melody])  # (B, T)
    return sample_system(batch, seeds, ctx, fgg=True, melody_shape=_melody_shape(batch, rhythm))


def _fgg_melody_auto(batch, seeds, ctx):
    counts = [None] * len(batch) if batch.onset_counts is None else list(batch.onset_counts)
    rhythm = np.stack([auto_rhythm(c, batch.chroma.shape[1]) for c in counts])  # (B, T)
    return sample_system(batch, seeds, ctx, fgg=True, melody_shape=_melody_shape(batch, rhythm))


def _melody_shape(batch: SegmentBatch, rhythm: np.ndarray | None) -> MelodyShape:
    """The melody's shape as ``fgg.inputs.resolve_melody_shape`` gives it by default: the
    default register, chord tones on strong beats, ``rhythm`` (B, T) (None: free)."""
    return MelodyShape(rhythm=rhythm, chord_tones=batch.chroma > 0)


def _rule_based(batch, seeds, ctx):
    counts = batch.onset_counts
    if counts is None:  # no rhythm given: block chords on every beat
        counts = np.resize(np.array([4, 0, 0, 0]), batch.chroma.shape[:2])
    return SystemOutput(
        np.stack(
            [
                rule_based_accompaniment(c, r, b, n)
                for c, r, b, n in zip(batch.chroma, batch.root, batch.bass, counts, strict=True)
            ]
        )
    )


def _ground_truth(batch, seeds, ctx):
    if batch.accompaniment is None:
        raise ValueError("ground_truth needs a POP909 segment (there is no human accompaniment for typed chords)")
    human = {"melody": batch.melody, "accompaniment": batch.accompaniment}  # (B, 2, T, P) each
    return SystemOutput(batch.mode.target({k: torch.from_numpy(v) for k, v in human.items()}).numpy())


SYSTEMS: dict[str, System] = {
    "fgg": _fgg,  # training control + sampling control (the full method)
    "no_fgg": _no_fgg,  # same model and seed, no sampling correction
    "last_step_remove": _last_step_remove,  # unguided, out-of-key notes deleted at the end
    "last_step_round": _last_step_round,  # unguided, out-of-key notes moved to the nearest allowed pitch
    "inpaint": _inpaint,  # out-of-key pixels inpainted as a known empty region at every step
    "null_rhythm": _null_rhythm,  # FGG with the rhythm condition dropped
    "rule_based": _rule_based,  # chord tones on the given rhythm, no learning (the floor)
    "ground_truth": _ground_truth,  # the human POP909 tracks (the ceiling)
    # a written melody's shape (fgg.melody_shape): register, one note at a time, and a rhythm
    "fgg_melody": _fgg_melody,  # the model's own rhythm, at least one note start per bar
    "fgg_melody_rhythm": _fgg_melody_rhythm,  # the segment's POP909 melody rhythm ("from segment")
    "fgg_melody_auto": _fgg_melody_auto,  # the default: the library rhythm suited to the accompaniment's
}
STOCHASTIC = set(SYSTEMS) - {"rule_based", "ground_truth"}  # the systems that sample with the model


# Systems that only post-process the unguided sample: given that sample, no resampling is needed.
POSTPROCESS = {"last_step_remove": remove_out_of_key, "last_step_round": round_out_of_key}


def run_system(
    name: str, batch: SegmentBatch, seeds: list[int], ctx: EvalContext, unguided: np.ndarray | None = None
) -> SystemOutput:
    """Output of system ``name``; ``unguided`` = the ``no_fgg`` rolls for the same seeds, if
    already sampled, lets the last-step baselines skip resampling."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    if name not in batch.mode.systems:
        raise ValueError(
            f"{name} does not evaluate the {batch.mode.name} mode; choose from {', '.join(batch.mode.systems)}"
        )
    if name in POSTPROCESS and unguided is not None:
        return SystemOutput(
            np.stack([POSTPROCESS[name](r, a) for r, a in zip(unguided, batch.allowed, strict=True)]), unguided
        )
    return SYSTEMS[name](batch, seeds, ctx)
