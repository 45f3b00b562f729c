"""Markdown tables from evaluation runs (``python -m eval.table``), as pasted into the READMEs.

    python -m eval.table assets/eval/paper assets/eval/small            # headline: models side by side
    python -m eval.table assets/eval/paper --full                       # every system, one run
    python -m eval.table assets/eval/paper --paired fgg                 # fgg minus each system, per segment

Cells are ``mean ± 95 % CI half-width`` from each run's ``summary.csv``; rates in percent.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HEADLINE = [("out_of_key_rate", "out-of-key (our table)"), ("out_of_key_rate_paper_table", "out-of-key (paper's table)"),
            ("chord_accuracy", "chord accuracy"), ("chord_similarity", "chord similarity (smg, bars 1–2)"),
            ("chord_similarity_full", "chord similarity (full)"), ("note_density", "notes / bar")]
FULL = HEADLINE[:2] + [("key_out_of_key_rate", "out-of-key (annotated key)")] + HEADLINE[2:] + [
    ("chord_accuracy_labels", "chord acc. vs input"), ("groove_similarity", "groove sim."), ("oa_pitch", "OA pitch"),
    ("key_fixes", "wrong notes fixed at the end"), ("key_fixes_per_note", "… per note")]
PERCENT = {"out_of_key_rate", "out_of_key_rate_paper_table", "key_out_of_key_rate", "key_fixes_per_note"}


def cell(summary: pd.DataFrame, system: str, metric: str) -> str:
    """``mean ± ci`` of one metric, '–' where the run has no value."""
    if system not in summary.index or metric not in summary or pd.isna(summary.loc[system, metric]):
        return "–"
    mean, ci = summary.loc[system, metric], summary.loc[system].get(f"{metric}_ci95", float("nan"))
    if metric in PERCENT:
        return f"{100 * mean:.2f} % ± {100 * ci:.2f}"
    digits = 1 if metric in ("note_density", "key_fixes") else 3
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def load(folder: str | Path) -> pd.DataFrame:
    path = Path(folder) / "summary.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no summary.csv in {folder}")
    return pd.read_csv(path).set_index("system")


def headline_table(runs: dict[str, pd.DataFrame], systems=("fgg", "no_fgg")) -> str:
    """One row per metric, one column per run × system."""
    columns = [(name, system) for name in runs for system in systems]
    lines = ["| | " + " | ".join(f"{name} `{system}`" for name, system in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for metric, label in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(cell(runs[n], s, metric) for n, s in columns) + " |")
    return "\n".join(lines)


def full_table(summary: pd.DataFrame) -> str:
    """One row per system, one column per metric."""
    lines = ["| system | " + " | ".join(label for _, label in FULL) + " |", "|---|" + "---|" * len(FULL)]
    for system in summary.index:
        lines.append(f"| `{system}` (n = {int(summary.loc[system, 'n'])}) | "
                     + " | ".join(cell(summary, system, m) for m, _ in FULL) + " |")
    return "\n".join(lines)


PAIRED = [("chord_accuracy", "chord accuracy"), ("chord_similarity", "chord similarity (smg)"),
          ("chord_similarity_full", "chord similarity (full)"), ("out_of_key_rate_paper_table", "out-of-key (paper's table)")]


def paired_table(per_sample: pd.DataFrame, system: str) -> str:
    """Mean per-segment difference ``system − other`` with its 95 % CI (1.96 · s / √n over the
    segments both have), for each other system: the comparison the README states."""
    wide = {m: per_sample.pivot_table(index=["segment", "seed"], columns="system", values=m) for m, _ in PAIRED}
    others = [s for s in per_sample.system.unique() if s != system]
    lines = [f"| `{system}` minus | " + " | ".join(label for _, label in PAIRED) + " |", "|---|" + "---|" * len(PAIRED)]
    for other in others:
        cells = []
        for metric, _ in PAIRED:
            diff = (wide[metric][system] - wide[metric][other]).dropna()
            ci = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            cells.append(f"{diff.mean():+.4f} ± {ci:.4f}")
        lines.append(f"| `{other}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.table", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluation folders (each with summary.csv)")
    parser.add_argument("--full", action="store_true", help="every system and metric of each run")
    parser.add_argument("--paired", metavar="SYSTEM", help="per-segment differences SYSTEM minus every other system")
    args = parser.parse_args(argv)
    try:
        if args.paired:
            for folder in args.runs:
                path = Path(folder) / "per_sample.csv"
                if not path.is_file():
                    raise FileNotFoundError(f"no per_sample.csv in {folder}")
                print(f"### {Path(folder).name}\n\n{paired_table(pd.read_csv(path), args.paired)}\n")
            return 0
        runs = {Path(folder).name: load(folder) for folder in args.runs}
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.full:
        for name, summary in runs.items():
            print(f"### {name}\n\n{full_table(summary)}\n")
    else:
        print(headline_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
