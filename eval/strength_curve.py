"""FGG strength trade-off curve (``python -m eval.strength_curve``).

    python -m eval.strength_curve --segments 50 --out DIR [--model paper] [--strengths 0,0.25,0.5,0.75,1]
        [--force-rhythm on,off]

Samples the ``fgg`` system (chords + ground-truth rhythm + melody, CFG, 10 DDIM steps) at each
strength, with FGG's rhythm forcing on and off, on the same validation segments and seeds, and
writes ``DIR/strength_curve.csv`` (``force_rhythm, strength, out_of_key_rate, chord_accuracy,
chord_similarity_full``, means over the segments, plus ``n`` and 95 % CI half-widths) and
``DIR/strength_curve.html`` (plotly). Strength 0 is the unguided sampler bit for bit
(``no_fgg``, whatever the forcing), 1 is full FGG (0 out of key); in between, FGG forbids the
harshest share of the out-of-key pitch classes (``fgg.guidance.graded_allowed``). With forcing
on, every strength above 0 also enforces the rhythm's onset counts, so 0⁺ differs from 0; with
it off the curve shows the pitch projection alone."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from eval import metrics as M
from eval.baselines import EvalContext, SegmentBatch, sample_system
from eval.chord_metrics import ChordScorer
from eval.run import add_model_arguments, curve_inputs, item_seed
from fgg.modes import ACCOMPANIMENT
from fgg.sampling import SamplingOptions

KEY_COLUMNS = ["force_rhythm", "strength"]
METRICS = ["out_of_key_rate", "chord_accuracy", "chord_similarity_full"]
DEFAULT_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
FORCINGS = {"on": True, "off": False}


def strength_curve(
    model: torch.nn.Module,
    segments: dict,
    chosen: np.ndarray,
    strengths=DEFAULT_STRENGTHS,
    options: SamplingOptions = SamplingOptions(),
    batch_size: int = 16,
    seed: int = 0,
    progress=None,
    forcings=(True, False),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curve: one row per rhythm forcing x strength with means and ``_ci95``, per_sample: one
    row per forcing x strength x segment). The out-of-key rate uses the table that guides (ours)."""
    ctx = EvalContext(model, options=options)
    scorer = ChordScorer()
    rows = []
    settings = [(force, strength) for force in forcings for strength in strengths]
    for force, strength in settings:
        ctx.options = replace(options, strength=float(strength), force_rhythm=force)
        for lo in range(0, len(chosen), batch_size):
            idx = chosen[lo : lo + batch_size]
            batch = SegmentBatch.from_segments(segments, idx)
            rolls = sample_system(batch, [item_seed(seed, int(s)) for s in idx], ctx, fgg=True).rolls
            scored = scorer.score_many(list(rolls), [str(int(s)) for s in idx], list(segments["accompaniment"][idx]))
            for j, (s, chords) in enumerate(zip(idx, scored, strict=True)):
                rows.append(
                    {
                        "force_rhythm": force,
                        "strength": float(strength),
                        "segment": int(s),
                        "out_of_key_rate": M.out_of_key_rate(rolls[j], batch.allowed[j]),
                        "chord_accuracy": chords["chord_accuracy"],
                        "chord_similarity_full": chords["chord_similarity_full"],
                    }
                )
            if progress is not None:
                progress(len(rows), len(settings) * len(chosen))
    per_sample = pd.DataFrame(rows)
    grouped = per_sample.groupby(KEY_COLUMNS, sort=True)
    curve = grouped[METRICS].mean().reset_index()
    curve["n"] = grouped.size().values
    for col in METRICS:
        curve[f"{col}_ci95"] = (1.96 * grouped[col].std(ddof=1) / np.sqrt(grouped.size())).values
    return curve, per_sample


def curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Out-of-key rate (left axis, in %) and chord metrics (right axis) against strength, with
    CIs; a solid line with rhythm forcing on, dashed with it off (a curve without the
    ``force_rhythm`` column, written before it existed, was made with forcing on)."""
    fig = go.Figure()
    if "force_rhythm" not in curve:
        curve = curve.assign(force_rhythm=True)
    for force, part in curve.groupby("force_rhythm", sort=False):
        dash, forcing = ("solid", "rhythm forced") if force else ("dash", "rhythm not forced")
        fig.add_scatter(
            x=part["strength"],
            y=100 * part["out_of_key_rate"],
            name=f"out-of-key, {forcing}",
            mode="lines+markers",
            error_y=dict(type="data", array=100 * part["out_of_key_rate_ci95"]),
            line=dict(color="#d62728", dash=dash),
        )
        for col, color in (("chord_accuracy", "#1f77b4"), ("chord_similarity_full", "#2ca02c")):
            fig.add_scatter(
                x=part["strength"],
                y=part[col],
                name=f"{col.replace('_', ' ')}, {forcing}",
                mode="lines+markers",
                yaxis="y2",
                error_y=dict(type="data", array=part[f"{col}_ci95"]),
                line=dict(color=color, dash=dash),
            )
    fig.update_layout(
        title="FGG strength:<br>out-of-key rate vs chord metrics",  # two lines: a phone's width
        height=440,
        margin=dict(t=70, b=40),
        xaxis=dict(title="FGG strength"),
        yaxis=dict(title="out-of-key rate (% of 16th steps)"),
        yaxis2=dict(title="chord metric (0–1)", overlaying="y", side="right"),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.strength_curve", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=50, help="number of validation segments (evenly spread)")
    parser.add_argument("--strengths", default=",".join(str(s) for s in DEFAULT_STRENGTHS))
    parser.add_argument(
        "--force-rhythm", default="on,off", help="FGG's rhythm forcing: on, off, or on,off (both curves; default)"
    )
    parser.add_argument("--out", required=True, help="folder for strength_curve.csv / .html")
    add_model_arguments(parser, ACCOMPANIMENT)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        strengths = sorted({float(s) for s in args.strengths.split(",") if s.strip()})
        if not strengths or not all(0.0 <= s <= 1.0 for s in strengths):
            raise ValueError(f"--strengths must be numbers in [0, 1], got {args.strengths!r}")
        names = [f.strip() for f in args.force_rhythm.split(",") if f.strip()]
        if not names or set(names) - set(FORCINGS):
            raise ValueError(f"--force-rhythm must be on, off or on,off, got {args.force_rhythm!r}")
        forcings = [FORCINGS[name] for name in dict.fromkeys(names)]
        model, segments, chosen, options = curve_inputs(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    curve, _ = strength_curve(model, segments, chosen, strengths, options, args.batch_size, forcings=forcings)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out / "strength_curve.csv", index=False)
    curve_figure(curve).write_html(out / "strength_curve.html", include_plotlyjs="cdn")  # small; the app draws it too
    with pd.option_context("display.width", 160, "display.precision", 4):
        print(curve[KEY_COLUMNS + ["n"] + METRICS].to_string(index=False))
    print(
        json.dumps(
            {
                "out": str(out),
                "model": args.checkpoint or args.model,
                "precision": options.precision,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
