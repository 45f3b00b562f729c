"""Quality against sampling steps (``python -m eval.steps_curve``): fewer network evaluations
with a higher-order solver, measured against the paper's 10 DDIM steps.

    python -m eval.steps_curve --segments 400 --model paper --out assets/eval
        [--configs ddim:10,dpmpp_2m:4,dpmpp_2m:5,dpmpp_2m:6,dpmpp_2m:8]

Samples the ``fgg`` system (chords + ground-truth rhythm + melody, CFG 7.5, FGG on) with each
solver:steps configuration (``fgg.diffusion.SOLVERS``) on the same validation segments and
starting noise, scores every sample as ``eval.run`` does (``eval.scoring.score_rows``) and
writes ``DIR/steps_curve.csv``: one row per configuration with each metric's mean and 95 % CI
half-width, and the mean per-segment difference from the first configuration (the
reference, ``ddim:10``) with its 95 % CI (``<metric>_diff``, ``<metric>_diff_ci95``). The cost
is the number of steps (two network evaluations each with CFG): ``python -m fgg.bench`` times it."""

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

from eval.baselines import EvalContext, SegmentBatch, sample_system
from eval.chord_metrics import ChordScorer
from eval.run import add_model_arguments, curve_inputs, item_seed
from eval.scoring import Job, score_rows
from eval.table import METRIC_COLUMNS, METRIC_INFO
from fgg.diffusion import SOLVERS
from fgg.modes import ACCOMPANIMENT
from fgg.sampling import SamplingOptions

METRICS = ["out_of_key_rate", "chord_accuracy", "chord_similarity_full", "groove_similarity", "note_density"]
DEFAULT_CONFIGS = "ddim:10,dpmpp_2m:4,dpmpp_2m:5,dpmpp_2m:6,dpmpp_2m:8"


def parse_configs(text: str) -> list[tuple[str, int]]:
    """ "ddim:10,dpmpp_2m:4" -> [("ddim", 10), ("dpmpp_2m", 4)], each checked."""
    configs = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        solver, _, steps = item.partition(":")
        if solver not in SOLVERS or not steps.isdigit():
            raise ValueError(f"a configuration is SOLVER:STEPS with SOLVER one of {', '.join(SOLVERS)}, got {item!r}")
        SOLVERS[solver].timesteps(int(steps))  # refuses a step count the solver cannot take
        configs.append((solver, int(steps)))
    if not configs:
        raise ValueError("give at least one SOLVER:STEPS configuration")
    return list(dict.fromkeys(configs))


def steps_curve(
    model: torch.nn.Module,
    segments: dict,
    chosen: np.ndarray,
    configs: list[tuple[str, int]],
    options: SamplingOptions = SamplingOptions(),
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curve: one row per configuration, per_sample: one row per configuration x segment)."""
    ctx, scorer, rows = EvalContext(model, options=options), ChordScorer(), []
    for solver, steps in configs:
        ctx.options = replace(options, solver=solver, steps=steps)
        for lo in range(0, len(chosen), batch_size):
            idx = chosen[lo : lo + batch_size]
            batch = SegmentBatch.from_segments(segments, idx)
            rolls = sample_system(batch, [item_seed(seed, int(s)) for s in idx], ctx, fgg=True).rolls
            jobs = [Job("fgg", int(s), seed, rolls[j], batch.allowed[j], None) for j, s in enumerate(idx)]
            for line in score_rows(jobs, segments, scorer):
                row = dict(zip(["system", "segment", "seed", *METRIC_COLUMNS], line, strict=True))
                rows.append(
                    {"solver": solver, "steps": steps, "segment": row["segment"]} | {m: row[m] for m in METRICS}
                )
    per_sample = pd.DataFrame(rows)
    return summarize(per_sample, configs), per_sample


def summarize(per_sample: pd.DataFrame, configs: list[tuple[str, int]]) -> pd.DataFrame:
    """Means with 95 % CIs, and paired differences from the first configuration."""
    reference = per_sample[(per_sample.solver == configs[0][0]) & (per_sample.steps == configs[0][1])]
    reference = reference.set_index("segment")
    lines = []
    for solver, steps in configs:
        part = per_sample[(per_sample.solver == solver) & (per_sample.steps == steps)].set_index("segment")
        line = {"solver": solver, "steps": steps, "n": len(part)}
        for metric in METRICS:
            diff = (part[metric] - reference[metric]).dropna()
            values = part[metric].dropna()
            line[metric] = values.mean()
            line[f"{metric}_ci95"] = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
            line[f"{metric}_diff"] = diff.mean()
            line[f"{metric}_diff_ci95"] = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        lines.append(line)
    return pd.DataFrame(lines)


def steps_figure(curve: pd.DataFrame) -> go.Figure:
    """Per-segment differences from the reference (the first row) against the number of steps,
    one line per solver and chord metric, with 95 % CIs."""
    fig = go.Figure()
    for metric, color in (("chord_accuracy", "#1f77b4"), ("chord_similarity_full", "#2ca02c")):
        for solver, part in curve.groupby("solver", sort=False):
            fig.add_scatter(
                x=part["steps"],
                y=part[f"{metric}_diff"],
                error_y=dict(type="data", array=part[f"{metric}_diff_ci95"]),
                mode="markers" if len(part) == 1 else "lines+markers",
                name=f"{METRIC_INFO[metric][0]}, {solver}",
                line=dict(color=color, dash="solid" if solver == curve.solver.iloc[0] else "dash"),
            )
    reference = curve.iloc[0]
    fig.add_hline(y=0, line=dict(color="#888", width=1))
    fig.update_layout(
        # Titles in short lines: they are read on a phone's width too.
        title=f"Chord metrics against steps,<br>minus {reference.solver} with {reference.steps} steps (paired)",
        height=400,
        margin=dict(t=70, b=40),
        xaxis=dict(title="sampling steps<br>(network evaluations, × 2 with CFG)"),
        yaxis=dict(title="difference (0–1 scale)"),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.steps_curve", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=400, help="number of validation segments (evenly spread)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="SOLVER:STEPS list, the reference first")
    parser.add_argument("--out", required=True, help="folder for steps_curve.csv")
    add_model_arguments(parser, ACCOMPANIMENT)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        configs = parse_configs(args.configs)
        model, segments, chosen, options = curve_inputs(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    curve, _ = steps_curve(model, segments, chosen, configs, options, args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out / "steps_curve.csv", index=False)
    shown = ["solver", "steps", "n"] + [f"{m}_diff" for m in METRICS]
    with pd.option_context("display.width", 200, "display.precision", 4):
        print(curve[shown].to_string(index=False))
    record = {"out": str(out), "model": args.checkpoint or args.model, "precision": options.precision}
    print(json.dumps(record | {"seconds": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
