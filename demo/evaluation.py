"""The evaluation behind the Evaluate tab: the committed runs, and a small "run now" run
(capped for a public page, cancellable)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pandas as pd

from demo.controller import Controller
from demo.limits import PUBLIC_EVAL_SEGMENTS, InputError, choice, number, shown
from eval.baselines import SYSTEMS
from fgg.data import VALID_SEGMENTS_FILE
from fgg.generate import SamplingOptions

EVAL_DIR = Path(__file__).resolve().parent.parent / "assets" / "eval"
STRENGTH_CURVE_FILE = EVAL_DIR / "strength_curve.csv"


class Cancelled(Exception):
    """The caller left (or cancelled) while its evaluation ran."""


def load_eval_results(folder: str | os.PathLike):
    """(summary, per_sample, out-of-key heat) DataFrames of a finished run, or Nones."""
    folder = Path(folder)
    if not (folder / "summary.csv").is_file():
        return None, None, None
    heat_file = folder / "out_of_key_pitch_classes.csv"
    return (
        pd.read_csv(folder / "summary.csv"),
        pd.read_csv(folder / "per_sample.csv"),
        pd.read_csv(heat_file) if heat_file.is_file() else None,
    )


def load_strength_curve(path: str | os.PathLike = STRENGTH_CURVE_FILE) -> pd.DataFrame | None:
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


def eval_request(controller: Controller, n_segments, systems, model=None) -> tuple[int, list[str], str]:
    """Checked inputs of a "run now" evaluation: at most ``PUBLIC_EVAL_SEGMENTS`` segments, one
    seed (bigger runs are ``python -m eval.run``'s job, not a public page's)."""
    n = number(n_segments, "n_segments", 1, PUBLIC_EVAL_SEGMENTS, integer=True)
    if not isinstance(systems, (list, tuple)) or len(systems) > len(SYSTEMS):
        raise InputError("systems", f"systems must be a list of up to {len(SYSTEMS)} of {', '.join(SYSTEMS)}")
    unknown = [s for s in systems if not isinstance(s, str) or s not in SYSTEMS]
    if unknown:
        raise InputError("systems", f"unknown system {shown(unknown[0])}; choose from {', '.join(SYSTEMS)}")
    systems = list(dict.fromkeys(systems))
    if not systems:
        raise InputError("systems", "choose at least one system to evaluate")
    return n, systems, choice(model or controller.default_model, list(controller.generators), "model")


def run_eval_now(
    controller: Controller, n_segments, systems, progress=None, model=None, cancel: threading.Event | None = None
):
    """A fresh small evaluation (one seed) in the workspace; returns (summary, per_sample CSV
    path, summary CSV path). A melody-writing model is evaluated as ``eval.run --mode
    melody+accompaniment`` does (``fgg``, ``no_fgg``, ``ground_truth``, whatever ``systems``
    says). Setting ``cancel`` stops it after the batch in progress (``Cancelled``)."""
    from eval.run import run

    n, systems, name = eval_request(controller, n_segments, systems, model)

    def report(done, total):
        if cancel is not None and cancel.is_set():
            raise Cancelled("evaluation cancelled")
        if progress is not None:
            progress(done, total)

    out = controller.workspace.new("evaluate-")
    generator = controller.generator(name)
    if generator.mode == "melody+accompaniment":  # from the chords alone: its own three systems
        from eval.combined import run_combined

        options = SamplingOptions(precision=generator.precision)
        summary = run_combined(VALID_SEGMENTS_FILE, n, out, generator.model, name, options, 4, progress=report)
    else:
        summary = run(
            VALID_SEGMENTS_FILE,
            systems,
            n,
            1,
            out,
            checkpoint=name,
            batch_size=4,
            progress=report,
            model=generator.model,
            precision=generator.precision,
        )
    for folder in ("rolls", "midi", ".work"):  # only the two CSVs are returned
        shutil.rmtree(out / folder, ignore_errors=True)
    (out / "report.html").unlink(missing_ok=True)
    return summary, str(out / "per_sample.csv"), str(out / "summary.csv")
