"""The evaluation behind the Evaluate tab: the committed runs, and a small "run now" run
(capped for a public page, cancellable)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pandas as pd

from demo.controller import Controller
from demo.limits import PUBLIC_EVAL_SEGMENTS
from eval.baselines import SYSTEMS
from eval.run import run
from fgg.checks import InputError, choice, number, shown
from fgg.data import VALID_SEGMENTS_FILE
from fgg.modes import get_mode

EVAL_DIR = Path(__file__).resolve().parent.parent / "assets" / "eval"
STRENGTH_CURVE_FILE = EVAL_DIR / "strength_curve.csv"
STEPS_CURVE_FILE = EVAL_DIR / "steps_curve.csv"


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


def load_curve(path: str | os.PathLike) -> pd.DataFrame | None:
    """A committed curve (``STRENGTH_CURVE_FILE``, ``STEPS_CURVE_FILE``), or None."""
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


def eval_request(controller: Controller, n_segments, systems, model=None) -> tuple[int, list[str], str]:
    """Checked inputs of a "run now" evaluation: at most ``PUBLIC_EVAL_SEGMENTS`` segments, one
    seed (bigger runs are ``python -m eval.run``'s job, not a public page's), systems of the
    model's mode."""
    n = int(number(n_segments, "n_segments", 1, PUBLIC_EVAL_SEGMENTS, integer=True))
    if not isinstance(systems, (list, tuple)) or len(systems) > len(SYSTEMS):
        raise InputError("systems", f"systems must be a list of up to {len(SYSTEMS)} of {', '.join(SYSTEMS)}")
    unknown = [s for s in systems if not isinstance(s, str) or s not in SYSTEMS]
    if unknown:
        raise InputError("systems", f"unknown system {shown(unknown[0])}; choose from {', '.join(SYSTEMS)}")
    systems = list(dict.fromkeys(systems))
    if not systems:
        raise InputError("systems", "choose at least one system to evaluate")
    name = choice(model or controller.default_model, list(controller.generators), "model")
    mode = get_mode(controller.generators[name].mode)
    foreign = [s for s in systems if s not in mode.systems]
    if foreign:
        raise InputError(
            "systems",
            f"{foreign[0]} does not evaluate the {name} model, which writes {mode.description}; "
            f"choose from {', '.join(mode.systems)}",
        )
    return n, systems, name


def run_eval_now(
    controller: Controller, n_segments, systems, progress=None, model=None, cancel: threading.Event | None = None
):
    """A fresh small evaluation (one seed) in the workspace, as ``python -m eval.run --mode``
    the model's mode does it; returns (summary, per_sample CSV path, summary CSV path).
    Setting ``cancel`` stops it after the batch in progress (``Cancelled``)."""
    n, systems, name = eval_request(controller, n_segments, systems, model)

    def report(done, total):
        if cancel is not None and cancel.is_set():
            raise Cancelled("evaluation cancelled")
        if progress is not None:
            progress(done, total)

    out = controller.workspace.new("evaluate-")
    generator = controller.generator(name)
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
        mode=generator.mode,
    )
    for folder in ("rolls", "midi", ".work"):  # only the two CSVs are returned
        shutil.rmtree(out / folder, ignore_errors=True)
    (out / "report.html").unlink(missing_ok=True)
    return summary, str(out / "per_sample.csv"), str(out / "summary.csv")
