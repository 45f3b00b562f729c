"""Chords (+ optional melody and rhythm) -> accompaniment roll and MIDI (``python -m fgg.generate``).

    python -m fgg.generate --chords "C G | Am F" --out out.mid [--melody in.mid] [--bars 8]
        [--no-fgg] [--cfg 7.5] [--steps 10] [--seed 0] [--scale dorian] [--rhythm eighth_arpeggio]

    from fgg.generate import generate
    generate("C G | Am F", rhythm="ballad", seed=1).midi.write("out.mid")

A request is resolved once (``fgg.inputs.resolve_spec`` -> ``GenerationSpec``) and sampled by
``Generator.sample``. Pieces longer than 4 bars are generated window by window: each 4-bar
window overlaps the already generated music by ``overlap_bars`` bars, and that overlap is
inpainted (held fixed through the sampler's known-region replacement), so bar joins are
seamless and the cost grows linearly with length. The windows are assembled into one roll,
decoded once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pretty_midi
import torch

from fgg.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS, load_model, resolve_checkpoint, resolve_device
from fgg.chords import Progression, progression_from_labels
from fgg.data import load_valid_segments
from fgg.diffusion import NOISES, SOLVERS, Schedule, StepCallback
from fgg.dynamics import shape_dynamics
from fgg.guidance import SCALE_TABLES
from fgg.inputs import RHYTHM_PATTERNS, SCALE_MODES, GenerationSpec, resolve_spec
from fgg.melody_shape import DEFAULT_REGISTER
from fgg.model import UNetConfig
from fgg.modes import ACCOMPANIMENT, MODES, Mode, get_mode, mode_of
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
from fgg.precision import PRECISION_HELP, PRECISIONS, resolve_precision
from fgg.sampling import SamplingOptions, build_conditions, sample_batch

MELODY_PROGRAM, ACCOMPANIMENT_PROGRAM = 0, 0
Progress = Callable[[int, int], None]
WindowDone = Callable[["GenerationResult"], None]


@dataclass
class GenerationResult:
    """What ``Generator.sample`` made: the rolls, the MIDI, and what was asked for."""

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


class Generator:
    """A loaded model + schedule; ``sample`` turns a ``GenerationSpec`` into music.
    ``precision`` ("auto", "fp32", "bf16"; see ``fgg.precision``) is the default of every
    request that does not name one."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        meta: dict | None = None,
        precision: str = "auto",
        name: str = "this model",
    ):
        self.model = model.to(device).eval()
        self.name = name  # how errors name it: a shipped model's name or a checkpoint path
        config = getattr(model, "config", None)
        self.mode: Mode = mode_of(config) if isinstance(config, UNetConfig) else ACCOMPANIMENT
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.schedule = Schedule.paper()
        self.meta = meta or {}

    @classmethod
    def from_checkpoint(cls, path=DEFAULT_MODEL, device: str = "auto", precision: str = "auto") -> Generator:
        """``path``: a shipped model's name ("paper", "small") or a checkpoint path."""
        dev = resolve_device(device)
        model, meta = load_model(resolve_checkpoint(path), dev)
        return cls(model, dev, meta, precision, name=str(path))

    def generate(
        self, chords, *, callback: StepCallback | None = None, progress: Progress | None = None, **inputs
    ) -> GenerationResult:
        """``resolve_spec(chords, **inputs)`` for this model's mode, sampled (``sample``)."""
        return self.sample(resolve_spec(chords, mode=self.mode, **inputs), callback=callback, progress=progress)

    @torch.inference_mode()
    def sample(
        self,
        spec: GenerationSpec,
        callback: StepCallback | None = None,
        progress: Progress | None = None,
        on_window: WindowDone | None = None,
    ) -> GenerationResult:
        """The music of ``spec``; ``callback(i, t, x_t, x̂₀)`` sees every sampler step of every
        window, ``progress(done, total)`` counts them, and ``on_window(so_far)`` gets, after each
        window but the last, the piece up to that window's end (final: later windows hold it
        fixed; a note still sounding there is cut), so its audio can start before the end."""
        began = time.perf_counter()
        if spec.mode != self.mode:
            raise ValueError(
                f"mode {spec.mode.name!r} needs a model of that mode; {self.name} generates {self.mode.name!r}"
            )
        precision = self.precision if spec.precision is None else resolve_precision(spec.precision, self.device)

        def window_done(roll: torch.Tensor, until: int) -> None:
            if on_window is not None:
                on_window(self._result(spec, roll, until, began))

        roll = self._sample_windows(spec, replace(spec.options, precision=precision), callback, progress, window_done)
        return self._result(spec, roll, spec.n_steps, began)

    def _result(self, spec: GenerationSpec, roll: torch.Tensor, until: int, began: float) -> GenerationResult:
        """The music of the x̂₀ ``roll``'s first ``until`` steps, as rolls and MIDI."""
        # Canonical rolls: drop sustain pixels that no onset leads into.
        tracks = {
            name: notes_to_roll(roll_to_notes(roll[0, 2 * i : 2 * i + 2, :until].numpy() > NOTE_THRESHOLD), until)
            for i, name in enumerate(self.mode.tracks)
        }  # name -> (2, until, P) bool
        given = np.zeros((2, until, N_PITCHES), dtype=bool) if spec.melody is None else spec.melody[:, :until]
        melody = tracks.get("melody", given)
        whole = until == spec.n_steps
        return GenerationResult(
            accompaniment=tracks["accompaniment"],
            melody=melody,
            progression=spec.progression,
            allowed=spec.allowed[:until],
            midi=piece_midi(melody, tracks["accompaniment"], spec.tempo),
            tempo=spec.tempo,
            seed=spec.seed,
            seconds=time.perf_counter() - began,
            warnings=list(spec.warnings) + (silent_bars_warning(melody) if self.mode.writes_melody and whole else []),
            melody_generated=self.mode.writes_melody,
        )

    def _sample_windows(
        self,
        spec: GenerationSpec,
        options: SamplingOptions,
        callback: StepCallback | None,
        progress: Progress | None,
        window_done: Callable[[torch.Tensor, int], None],
    ) -> torch.Tensor:
        """(1, C, T_total, P) x̂₀ of the whole piece, 4-bar window by window (module docstring);
        ``window_done(roll, until)`` after each window but the last: steps before ``until`` are final."""
        n_steps = spec.n_steps
        cond, null = build_conditions(
            spec.progression.chroma[None],
            None if spec.counts is None else spec.counts[None],
            None if spec.melody is None else spec.melody[None],
            self.mode,
        )  # (1, 6 - C, T_total, P) each
        guide = torch.from_numpy(spec.guide)[None]  # (1, T_total, P)
        counts = None if spec.counts is None else torch.from_numpy(spec.counts)[None]  # (1, T_total)
        starts = window_starts(n_steps, spec.overlap_bars)
        n_sampler_steps = len(SOLVERS[options.solver].timesteps(options.steps))
        total = len(starts) * n_sampler_steps
        generator = torch.Generator().manual_seed(spec.seed)
        roll = torch.zeros(1, self.mode.channels, n_steps, N_PITCHES)  # (1, C, T_total, P)
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
            x_init = torch.randn(1, self.mode.channels, SEGMENT_STEPS, N_PITCHES, generator=generator)
            roll[:, :, window] = sample_batch(
                self.model,
                self.schedule,
                cond[:, :, window],
                null[:, :, window],
                guide[:, window],
                None if counts is None else counts[:, window],
                x_init,
                options,
                generator=generator,
                callback=on_step,
                known=roll[:, :, window] if known_steps else None,
                known_mask=mask if known_steps else None,
                melody_shape=None if spec.melody_shape is None else spec.melody_shape.steps(window),
            )
            done_until = start + SEGMENT_STEPS
            if w < len(starts) - 1:
                window_done(roll, done_until)
        return roll


def window_starts(n_steps: int, overlap_bars: int) -> list[int]:
    """First steps of the 4-bar windows covering ``n_steps``, each overlapping the one before by
    ``overlap_bars`` bars (the last one aligned to the end)."""
    hop = (SEGMENT_BARS - overlap_bars) * STEPS_PER_BAR
    starts = list(range(0, n_steps - SEGMENT_STEPS + 1, hop))
    if starts[-1] != n_steps - SEGMENT_STEPS:
        starts.append(n_steps - SEGMENT_STEPS)
    return starts


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


def generate(chords, *, model=None, device: str = "auto", precision: str = "auto", **inputs) -> GenerationResult:
    """Generate with a shipped model or a checkpoint path (loaded once per process) on ``device``
    at ``precision``; ``inputs`` are ``fgg.inputs.resolve_spec``'s (melody, rhythm, bars, fgg,
    strength, scale, seed, mode, ...). ``model=None`` takes the mode's default: "paper" for
    the accompaniment, "combined-paper" for melody and accompaniment from the chords alone."""
    spec = resolve_spec(chords, **inputs)
    return default_generator(model or spec.mode.default_model, device, precision).sample(spec)


def silent_bars_warning(melody: np.ndarray) -> list[str]:
    """A warning naming the bars (1-based) of a written melody (2, T, P) where no note sounds."""
    sounding = (melody[0] | melody[1]).any(-1).reshape(-1, STEPS_PER_BAR).any(-1)  # (bars,)
    silent = (np.flatnonzero(~sounding) + 1).tolist()
    if not silent:
        return []
    shown = ", ".join(map(str, silent[:8])) + (f" and {len(silent) - 8} more" if len(silent) > 8 else "")
    return [
        f"the melody is silent in bar{'s' if len(silent) > 1 else ''} {shown}: a melody rhythm "
        "(auto, free or a rhythm) gives every bar a note"
    ]


def build_parser() -> argparse.ArgumentParser:
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
        default=ACCOMPANIMENT.name,
        help="; ".join(f"{m.name}: {m.description}" for m in MODES.values())
        + " (a mode needs a checkpoint trained for it: python -m fgg.train --mode NAME)",
    )
    parser.add_argument("--bars", type=int, help="length in bars (default: the progression's, at least 4)")
    parser.add_argument("--rhythm", help=f"none | {' | '.join(RHYTHM_PATTERNS)}")
    parser.add_argument(
        "--melody-rhythm",
        default="auto",
        help="melody+accompaniment mode: the melody's rhythm — auto (default: a library rhythm suited to "
        "--rhythm), free (the model's, one note at a time, at least one per bar), off (no melody "
        "constraints), a rhythm's key from python -m fgg.melody_rhythms (e.g. e-e-e-e-h), or a pattern "
        "(x starts a note, - holds it, . rests; whole bars of 16)",
    )
    parser.add_argument(
        "--melody-register",
        nargs=2,
        type=int,
        metavar=("LOW", "HIGH"),
        help=f"with --melody-rhythm: the melody's MIDI range (default {DEFAULT_REGISTER[0]} {DEFAULT_REGISTER[1]})",
    )
    parser.add_argument("--no-fgg", action="store_true", help="sample without fine-grained guidance")
    parser.add_argument("--strength", type=float, default=1.0, help="FGG strength 0-1 (the pitch projection)")
    parser.add_argument(
        "--no-force-rhythm",
        action="store_true",
        help="with FGG and a rhythm: condition on the onset counts without enforcing them at each step",
    )
    parser.add_argument("--cfg", type=float, default=7.5, help="classifier-free guidance scale")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps (10 = the paper's schedule)")
    parser.add_argument(
        "--solver",
        choices=list(SOLVERS),
        default="ddim",
        help="ddim (the paper's 10 timesteps for 10 steps) or dpmpp_2m (DPM-Solver++(2M): fewer steps)",
    )
    parser.add_argument("--eta", type=float, default=0.0, help="per-step noise scale (0 = deterministic DDIM)")
    parser.add_argument(
        "--noise",
        choices=NOISES,
        default="ddim",
        help="per-step noise: ddim (sigma = eta x DDIM's), or one_step (the authors' sampler: DDPM's "
        "one-step sigma inside the update, eta = their temperature, 1 in their code)",
    )
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
    return parser


def segment_inputs(index: int, mode: Mode) -> dict:
    """A POP909 validation segment's chords, rhythm and (for a mode that takes one) melody."""
    seg = load_valid_segments()
    if not 0 <= index < len(seg["song_id"]):
        raise ValueError(f"--segment must be 0-{len(seg['song_id']) - 1}, got {index}")
    inputs = {
        "chords": progression_from_labels([str(x) for x in seg["chord_labels"][index]]),
        "rhythm": seg["onset_counts"][index],
    }
    if mode.takes_melody:
        inputs["melody"] = seg["melody"][index]
    return inputs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = get_mode(args.mode)
    given = {"chords": args.chords, "melody": args.melody, "rhythm": args.rhythm}
    try:
        from_segment = {} if args.segment is None else segment_inputs(args.segment, mode)
        inputs: dict[str, Any] = {k: v if v is not None else from_segment.get(k) for k, v in given.items()}
        if inputs["chords"] is None:
            raise ValueError("give --chords (or --segment)")
        spec = resolve_spec(
            **inputs,
            bars=args.bars,
            cfg_scale=args.cfg,
            fgg=not args.no_fgg,
            strength=args.strength,
            force_rhythm=not args.no_force_rhythm,
            eta=args.eta,
            noise=args.noise,
            solver=args.solver,
            scale=args.scale,
            steps=args.steps,
            seed=args.seed,
            tempo=args.tempo,
            scale_table=args.scale_table,
            scale_mode=args.scale_mode,
            melody_rhythm=args.melody_rhythm,
            melody_register=args.melody_register,
            mode=mode,
        )
        gen = Generator.from_checkpoint(
            args.checkpoint or args.model or mode.default_model, args.device, args.precision
        )
        if gen.mode != mode:
            raise ValueError(
                f"--mode {mode.name} needs a checkpoint trained for it; this one generates "
                f"{gen.mode.name} (train one with: python -m fgg.train --mode {mode.name} --out runs/NAME)"
            )
        result = gen.sample(spec)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result.midi.write(args.out)
    summary = {
        "wrote": args.out,
        "bars": result.n_bars,
        "accompaniment_notes": len(result.notes),
        "out_of_key_notes": result.out_of_key_notes,
        "fgg": not args.no_fgg,
        "mode": gen.mode.name,
        "melody_notes": len(roll_to_notes(result.melody)),
        "precision": gen.precision,
        "seconds": round(result.seconds, 3),
        "warnings": result.warnings,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
