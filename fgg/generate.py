"""Chords (+ optional melody and rhythm) -> accompaniment roll and MIDI (``python -m fgg.generate``).

    python -m fgg.generate --chords "C G | Am F" --out out.mid [--melody in.mid] [--bars 8]
        [--no-fgg] [--cfg 7.5] [--steps 10] [--seed 0] [--scale dorian] [--rhythm eighth_arpeggio]

Pieces longer than 4 bars are generated window by window: each 4-bar window overlaps the
already generated music by ``overlap_bars`` bars, and that overlap is inpainted (held fixed
through the sampler's known-region replacement), so bar joins are seamless and the cost
grows linearly with length. The windows are assembled into one roll, decoded once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pretty_midi
import torch

from fgg.checkpoint import (
    DEFAULT_MODEL,
    DEFAULT_MODELS,
    SHIPPED_MODELS,
    load_model,
    resolve_checkpoint,
    resolve_device,
)
from fgg.chords import (
    Progression,
    parse_progression,
    progression_from_labels,
)
from fgg.condition import (
    chord_condition,
    melody_condition,
    null_melody_condition,
    null_rhythm_condition,
)
from fgg.diffusion import Schedule, StepCallback, sample_ddim, sampling_timesteps
from fgg.dynamics import shape_dynamics
from fgg.guidance import (
    SCALE_TABLES,
    cfg_denoiser,
    fgg_denoiser,
    graded_allowed,
    pitch_mask,
)
from fgg.inputs import (
    RHYTHM_PATTERNS,
    SCALE_MODES,
    allowed_pitch_classes,
    cut_progression_warnings,
    fit_progression,
    load_melody,
    rhythm_counts,
)
from fgg.model import MODES, UNetConfig, mode_of
from fgg.pianoroll import (
    N_PITCHES,
    NOTE_THRESHOLD,
    SEGMENT_BARS,
    SEGMENT_STEPS,
    STEPS_PER_BAR,
    notes_to_roll,
    out_of_key_notes,
    roll_to_notes,
    rolls_to_midi,
)
from fgg.precision import PRECISION_HELP, PRECISIONS, network, resolve_precision

MAX_BARS = 64
MELODY_PROGRAM, ACCOMPANIMENT_PROGRAM = 0, 0


@dataclass
class GenerationResult:
    accompaniment: np.ndarray  # (2, T, 64) bool
    melody: np.ndarray  # (2, T, 64) bool (all False without a melody)
    progression: Progression  # the chords actually used, T steps
    allowed: np.ndarray  # (T, 12) bool pitch classes allowed at each step
    midi: pretty_midi.PrettyMIDI
    tempo: float
    seed: int
    seconds: float
    warnings: list[str] = field(default_factory=list)  # what the caller should know (e.g. a cut progression)
    melody_generated: bool = False  # melody+accompaniment mode: the melody is the model's too

    @property
    def n_bars(self) -> int:
        return self.accompaniment.shape[1] // STEPS_PER_BAR

    @property
    def notes(self) -> np.ndarray:
        return roll_to_notes(self.accompaniment)

    @property
    def out_of_key_notes(self) -> int:
        """Generated notes on a disallowed pitch class (the melody's too when it was generated)."""
        melody = out_of_key_notes(self.melody, self.allowed) if self.melody_generated else 0
        return out_of_key_notes(self.accompaniment, self.allowed) + melody


def build_conditions(
    chroma: np.ndarray, counts: np.ndarray | None, melody: np.ndarray | None, mode: str = "accompaniment"
):
    """(B, T, 12) chroma, (B, T) onset counts or None (null rhythm), (B, 2, T, P) melody roll or
    None (null melody) -> (cond, null) float tensors (B, 4, T, P) of condition channels; in
    ``melody+accompaniment`` mode the chord channels alone, (B, 2, T, P)."""
    chroma = np.asarray(chroma, dtype=np.float32)
    b, n_steps = chroma.shape[:2]
    chord = null_rhythm_condition(chroma) if counts is None else chord_condition(chroma, counts)
    if mode == "melody+accompaniment":
        return torch.from_numpy(chord), torch.from_numpy(null_rhythm_condition(chroma))
    mel = null_melody_condition(n_steps, (b,)) if melody is None else melody_condition(melody)
    cond = torch.from_numpy(np.concatenate([chord, mel], axis=1))
    null = torch.from_numpy(np.concatenate([null_rhythm_condition(chroma), null_melody_condition(n_steps, (b,))], 1))
    return cond, null


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


@dataclass(frozen=True)
class SamplingOptions:
    cfg_scale: float = 7.5
    cfg_rescale: float = 0.7
    fgg: bool = True
    strength: float = 1.0
    force_rhythm: bool = True  # with FGG and a rhythm: enforce the onset counts exactly
    steps: int = 10
    eta: float = 0.0
    precision: str = "fp32"  # the network's, resolved ("fp32" | "bf16"; fgg.precision)


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
) -> torch.Tensor:
    """Sample a batch of 4-bar windows; returns the final x̂₀ (B, 2, T, P) on the CPU.

    cond/null (B, 4, T, P) condition channels (B, 2, … in melody+accompaniment mode), allowed
    (B, T, P) bool pixels, counts (B, T) rhythm to enforce on the accompaniment (or None),
    x_init (B, C, T, P) starting noise, C = 2 per generated track with the accompaniment last
    (drawn by the caller so that each item's seed decides its sample whatever the batch). ``known``/``known_mask``
    inpaint a region (see ``sample_ddim``). FGG runs when ``options.fgg`` and
    ``options.strength`` > 0 (strength 0 is the unguided sampler, bit for bit); ``allowed`` is
    then the mask for that strength (``fgg_pixel_mask``). ``before_fgg(x_t, x̂₀)`` sees every
    step's prediction before FGG edits it (the evaluation measures the edit with it)."""
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
    out = sample_ddim(
        denoiser,
        schedule,
        tuple(x_init.shape),
        sampling_timesteps(options.steps),
        eta=options.eta,
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


class Generator:
    """A loaded model + schedule; ``generate`` is the whole pipeline. ``precision`` ("auto",
    "fp32", "bf16"; see ``fgg.precision``) is the default of every ``generate`` call."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        meta: dict | None = None,
        precision: str = "auto",
    ):
        self.model = model.to(device).eval()
        config = getattr(model, "config", None)
        self.mode = mode_of(config) if isinstance(config, UNetConfig) else "accompaniment"
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.schedule = Schedule.paper()
        self.meta = meta or {}

    @classmethod
    def from_checkpoint(cls, path=DEFAULT_MODEL, device: str = "auto", precision: str = "auto") -> Generator:
        """``path``: a shipped model's name ("paper", "small") or a checkpoint path."""
        dev = resolve_device(device)
        model, meta = load_model(resolve_checkpoint(path), dev)
        return cls(model, dev, meta, precision)

    @torch.inference_mode()
    def generate(
        self,
        chords,
        melody=None,
        rhythm=None,
        bars: int | None = None,
        cfg_scale: float = 7.5,
        fgg: bool = True,
        strength: float = 1.0,
        scale=None,
        steps: int = 10,
        seed: int = 0,
        tempo: float = 90.0,
        cfg_rescale: float = 0.7,
        eta: float = 0.0,
        force_rhythm: bool = True,
        overlap_bars: int = 1,
        scale_table: str = "ours",
        scale_mode: str = "with_chords",
        precision: str | None = None,
        callback: StepCallback | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> GenerationResult:
        """Chords (text or ``Progression``) -> ``GenerationResult``; see the module docstring and
        README for every option. ``bars=None`` takes the progression's length (at least 4); a
        shorter ``bars`` cuts the progression and says so in ``result.warnings``. Raises
        ``ValueError`` with a user-facing message on bad input."""
        began = time.perf_counter()
        combined = self.mode == "melody+accompaniment"
        if combined and melody is not None:
            raise ValueError(
                "this is a melody+accompaniment model: it writes the melody itself; give chords (and "
                "optionally a rhythm) only"
            )
        progression = chords if isinstance(chords, Progression) else parse_progression(chords)
        bars = max(progression.n_bars, SEGMENT_BARS) if bars is None else int(bars)
        if not SEGMENT_BARS <= bars <= MAX_BARS:
            raise ValueError(f"bars must be {SEGMENT_BARS}-{MAX_BARS}, got {bars}")
        warnings = cut_progression_warnings(progression, bars)
        if not 1 <= overlap_bars <= SEGMENT_BARS - 1:
            raise ValueError(f"overlap_bars must be 1-{SEGMENT_BARS - 1}, got {overlap_bars}")
        if not 1.0 <= cfg_scale <= 20.0:
            raise ValueError(f"cfg_scale must be in 1-20, got {cfg_scale}")
        progression = fit_progression(progression, bars)
        n_steps = bars * STEPS_PER_BAR
        counts = rhythm_counts(rhythm, n_steps)
        melody_roll = np.zeros((2, n_steps, N_PITCHES), dtype=bool) if melody is None else load_melody(melody, n_steps)
        allowed_pcs = allowed_pitch_classes(progression, scale, scale_table, scale_mode)

        cond, null = build_conditions(
            progression.chroma[None],
            None if counts is None else counts[None],
            None if melody is None else melody_roll[None],
            self.mode,
        )  # (1, 4|2, T_total, P)
        allowed = fgg_pixel_mask(
            allowed_pcs[None], progression.chroma[None], progression.root[None], strength
        )  # (1, T_total, P)
        counts_t = None if counts is None else torch.from_numpy(counts)[None]  # (1, T_total)
        precision = self.precision if precision is None else resolve_precision(precision, self.device)
        options = SamplingOptions(cfg_scale, cfg_rescale, fgg, strength, force_rhythm, steps, eta, precision)

        hop = (SEGMENT_BARS - overlap_bars) * STEPS_PER_BAR
        starts = list(range(0, n_steps - SEGMENT_STEPS + 1, hop))
        if starts[-1] != n_steps - SEGMENT_STEPS:
            starts.append(n_steps - SEGMENT_STEPS)
        n_sampler_steps = len(sampling_timesteps(steps))
        total = len(starts) * n_sampler_steps
        generator = torch.Generator().manual_seed(int(seed))
        channels = 2 * len(MODES[self.mode])
        roll = torch.zeros(1, channels, n_steps, N_PITCHES)  # (1, C, T_total, P)
        done_until = 0
        for w, start in enumerate(starts):
            window = slice(start, start + SEGMENT_STEPS)
            known_steps = max(0, done_until - start)
            mask = torch.zeros(1, 1, SEGMENT_STEPS, 1, dtype=torch.bool)
            mask[:, :, :known_steps] = True

            def on_step(i, t, x_t, x0, _w=w):
                if callback is not None:
                    callback(_w * n_sampler_steps + i, t, x_t, x0)
                if progress is not None:
                    progress(_w * n_sampler_steps + i + 1, total)

            # Noise is drawn on the CPU generator so a seed gives the same piece on any device.
            x_init = torch.randn(1, channels, SEGMENT_STEPS, N_PITCHES, generator=generator)
            out = sample_batch(
                self.model,
                self.schedule,
                cond[:, :, window],
                null[:, :, window],
                allowed[:, window],
                None if counts_t is None else counts_t[:, window],
                x_init,
                options,
                generator=generator,
                callback=on_step,
                known=roll[:, :, window] if known_steps else None,
                known_mask=mask if known_steps else None,
            )
            roll[:, :, window] = out
            done_until = start + SEGMENT_STEPS

        tracks = roll[0].numpy() > NOTE_THRESHOLD  # (C, T_total, P), the accompaniment last
        # Canonical rolls: drop sustain pixels that no onset leads into.
        acc = notes_to_roll(roll_to_notes(tracks[-2:]), n_steps)
        if combined:
            melody_roll = notes_to_roll(roll_to_notes(tracks[:2]), n_steps)
        return GenerationResult(
            acc,
            melody_roll,
            progression,
            allowed_pcs,
            piece_midi(melody_roll, acc, tempo),
            float(tempo),
            int(seed),
            time.perf_counter() - began,
            warnings,
            combined,
        )


def piece_midi(melody: np.ndarray, accompaniment: np.ndarray, tempo: float) -> pretty_midi.PrettyMIDI:
    """(2, T, 64) melody and accompaniment rolls -> the MIDI every generated piece is written as:
    two instruments, velocities from ``fgg.dynamics.shape_dynamics`` (melody above)."""
    return shape_dynamics(
        rolls_to_midi(
            {"melody": melody, "accompaniment": accompaniment},
            tempo,
            programs={"melody": MELODY_PROGRAM, "accompaniment": ACCOMPANIMENT_PROGRAM},
        )
    )


_DEFAULT: dict[str, Generator] = {}


def default_generator(model=DEFAULT_MODEL, device: str = "auto", precision: str = "auto") -> Generator:
    """A shipped model by name ("paper", "small") or a checkpoint path, loaded once per process."""
    key = f"{resolve_checkpoint(model)}|{device}|{precision}"
    if key not in _DEFAULT:
        _DEFAULT[key] = Generator.from_checkpoint(model, device, precision)
    return _DEFAULT[key]


def generate(
    chords,
    melody=None,
    rhythm=None,
    bars: int | None = None,
    cfg_scale: float = 7.5,
    fgg: bool = True,
    strength: float = 1.0,
    scale=None,
    steps: int = 10,
    seed: int = 0,
    tempo: float = 90.0,
    model=None,
    device: str = "auto",
    precision: str = "auto",
    mode: str = "accompaniment",
    **kwargs,
) -> GenerationResult:
    """Generate with a shipped model or a checkpoint path, loaded once; see
    ``Generator.generate``. ``model=None`` takes ``mode``'s default: "paper" for the
    accompaniment, "combined-paper" for melody and accompaniment from the chords alone."""
    if mode not in DEFAULT_MODELS:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(DEFAULT_MODELS)}")
    generator = default_generator(model or DEFAULT_MODELS[mode], device, precision)
    if generator.mode != mode:
        raise ValueError(f"mode {mode!r} needs a model of that mode; {model} generates {generator.mode!r}")
    return generator.generate(
        chords,
        melody=melody,
        rhythm=rhythm,
        bars=bars,
        cfg_scale=cfg_scale,
        fgg=fgg,
        strength=strength,
        scale=scale,
        steps=steps,
        seed=seed,
        tempo=tempo,
        **kwargs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.generate", description="Generate a piano accompaniment.")
    parser.add_argument(
        "--chords", help='progression, bars separated by "|", e.g. "C G | Am F" (may be omitted with --segment)'
    )
    parser.add_argument(
        "--segment",
        type=int,
        help="a POP909 validation segment (index into "
        "assets/pop909_valid_segments.npz): its chords, melody and rhythm, unless given explicitly",
    )
    parser.add_argument("--melody", help="melody MIDI file (optional; accompaniment mode only)")
    parser.add_argument(
        "--mode",
        choices=list(MODES),
        default="accompaniment",
        help="accompaniment (for chords + melody) or melody+accompaniment (both from the chords; "
        "needs a checkpoint trained with python -m fgg.train --mode melody+accompaniment)",
    )
    parser.add_argument("--bars", type=int, help="length in bars (default: the progression's, at least 4)")
    parser.add_argument("--rhythm", help=f"none | {' | '.join(RHYTHM_PATTERNS)}")
    parser.add_argument("--no-fgg", action="store_true", help="sample without fine-grained guidance")
    parser.add_argument("--strength", type=float, default=1.0, help="FGG strength 0-1")
    parser.add_argument("--cfg", type=float, default=7.5, help="classifier-free guidance scale")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps (10 = the paper's schedule)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", help='e.g. "dorian" or "D dorian" (default: derived from the chords)')
    parser.add_argument(
        "--scale-mode",
        choices=SCALE_MODES,
        default="with_chords",
        help="with --scale: also allow each chord's own tones (default) or the scale alone",
    )
    parser.add_argument(
        "--scale-table",
        choices=SCALE_TABLES,
        default="ours",
        help="chord -> scale table when no --scale is given (see eval/METRICS.md)",
    )
    parser.add_argument("--tempo", type=float, default=90.0)
    parser.add_argument(
        "--model",
        choices=sorted(SHIPPED_MODELS),
        help="shipped model: paper (26.6 M parameters, best quality, the default) or small (2.7 M, fastest); "
        "with --mode melody+accompaniment combined-paper (the default) or combined-small",
    )
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    parser.add_argument("--out", required=True, help="MIDI file to write")
    args = parser.parse_args(argv)
    try:
        chords, melody, rhythm, tempo = args.chords, args.melody, args.rhythm, args.tempo
        if args.segment is not None:
            from fgg.data import load_valid_segments

            seg = load_valid_segments()
            if not 0 <= args.segment < len(seg["song_id"]):
                raise ValueError(f"--segment must be 0-{len(seg['song_id']) - 1}, got {args.segment}")
            chords = chords or progression_from_labels([str(x) for x in seg["chord_labels"][args.segment]])
            if args.mode == "accompaniment":
                melody = melody or seg["melody"][args.segment]
            rhythm = rhythm or seg["onset_counts"][args.segment]
        if chords is None:
            raise ValueError("give --chords (or --segment)")
        gen = Generator.from_checkpoint(
            args.checkpoint or args.model or DEFAULT_MODELS[args.mode], args.device, args.precision
        )
        if gen.mode != args.mode:
            raise ValueError(
                f"--mode {args.mode} needs a checkpoint trained for it; this one generates "
                f"{gen.mode} (train one with: python -m fgg.train --mode {args.mode} --out runs/NAME)"
            )
        result = gen.generate(
            chords,
            melody=melody,
            rhythm=rhythm,
            bars=args.bars,
            cfg_scale=args.cfg,
            fgg=not args.no_fgg,
            strength=args.strength,
            scale=args.scale,
            steps=args.steps,
            seed=args.seed,
            tempo=tempo,
            scale_table=args.scale_table,
            scale_mode=args.scale_mode,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result.midi.write(args.out)
    print(
        json.dumps(
            {
                "wrote": args.out,
                "bars": result.n_bars,
                "accompaniment_notes": len(result.notes),
                "out_of_key_notes": result.out_of_key_notes,
                "fgg": not args.no_fgg,
                "mode": gen.mode,
                "melody_notes": len(roll_to_notes(result.melody)),
                "precision": gen.precision,
                "seconds": round(result.seconds, 3),
                "warnings": result.warnings,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
