"""Markdown tables from evaluation runs (``python -m eval.table``), as pasted into the READMEs.

    python -m eval.table assets/eval/paper assets/eval/small            # headline: models side by side
    python -m eval.table assets/eval/paper --full                       # every system, one run
    python -m eval.table assets/eval/paper --paired fgg                 # fgg minus each system, per segment
    python -m eval.table assets/eval/paper-table --paired fgg --against assets/eval/paper   # across two runs

Cells are ``mean ± 95 % CI half-width`` from each run's ``summary.csv``; rates in percent.
The metric columns of each mode's ``per_sample.csv`` (``METRIC_COLUMNS``, ``COMBINED_METRICS``)
are defined here, once; ``eval.scoring`` computes them and ``eval.run`` prints its summary with
``console_summary``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# The accompaniment mode's per_sample.csv metric columns, in order (eval.scoring.score_rows).
METRIC_COLUMNS = (
    "out_of_key_rate",
    "out_of_key_rate_paper_table",
    "out_of_key_note_rate",
    "key_out_of_key_rate",
    "smg_out_of_key_fraction",
    "chord_accuracy",
    "chord_accuracy_labels",
    "chord_similarity",
    "chord_similarity_full",
    "note_density",
    "polyphony",
    "pitch_range",
    "groove_similarity",
    "oa_pitch",
    "oa_duration",
    "oa_ioi",
    "notes_edited",
    "key_fixes",
    "key_fixes_per_note",
)
# A melody+accompaniment run has its own metrics: per track, and the melody's
# (eval.scoring.score_pieces), in its per_sample.csv's order.
COMBINED_METRICS = (
    "out_of_key_rate",
    "out_of_key_rate_paper_table",
    "out_of_key_rate_melody",
    "out_of_key_rate_accompaniment",
    "chord_accuracy_labels",
    "chord_accuracy",
    "chord_similarity_full",
    "note_density",
    "melody_notes",
    "melody_range",
    "melody_pitch_class_entropy",
    "melody_longest_run",
    "melody_strong_beat_chord_tones",
    "melody_silent_bars",
    "melody_below_accompaniment",
)
PERCENT = {
    "out_of_key_rate",
    "out_of_key_rate_paper_table",
    "out_of_key_note_rate",
    "key_out_of_key_rate",
    "smg_out_of_key_fraction",
    "key_fixes_per_note",
    "out_of_key_rate_melody",
    "out_of_key_rate_accompaniment",
    "melody_silent_bars",
    "melody_below_accompaniment",
}
# Every summary column a person may see: its name, its unit, and one line on what it is
# (eval/METRICS.md has the formulas and the edge cases).
METRIC_INFO: dict[str, tuple[str, str, str]] = {
    "out_of_key_rate": (
        "out-of-key (our table)",
        "% of steps",
        "Steps where a sounding note is outside the scale our table derives from the chord. Lower is better.",
    ),
    "out_of_key_rate_paper_table": (
        "out-of-key (paper's table)",
        "% of steps",
        "The same rate with the paper's stricter chord → scale table.",
    ),
    "out_of_key_note_rate": ("out-of-key notes", "% of notes", "Notes that touch a disallowed pitch class anywhere."),
    "key_out_of_key_rate": (
        "out-of-key (annotated key)",
        "% of steps",
        "Steps with a note outside the song's annotated key (POP909 key labels).",
    ),
    "smg_out_of_key_fraction": (
        "out-of-key (detected key)",
        "% of steps",
        "smg-metrics: against a key detected from the accompaniment itself.",
    ),
    "chord_accuracy": (
        "chord accuracy",
        "0–1",
        "Per-beat chords recognised in the output vs in the human "
        "accompaniment (root + major/minor; smg-metrics). Higher is better.",
    ),
    "chord_accuracy_labels": ("chord acc. vs input", "0–1", "Recognised chords vs the chords the model was given."),
    "chord_similarity": (
        "chord similarity (smg, bars 1–2)",
        "−1–1",
        "Cosine of PolyDis chord embeddings vs the human accompaniment, bars 1–2 only (smg-metrics).",
    ),
    "chord_similarity_full": (
        "chord similarity (full)",
        "−1–1",
        "The same cosine averaged over bars 1–2 and 3–4: read the paper's 0.767 against this.",
    ),
    "note_density": ("notes / bar", "notes", "How many notes the accompaniment plays per bar."),
    "polyphony": ("polyphony", "notes", "Mean number of notes sounding together (where something sounds)."),
    "pitch_range": ("pitch range", "semitones", "Highest minus lowest pitch."),
    "groove_similarity": ("groove sim.", "0–1", "Onset pattern agreement with the human accompaniment, per bar."),
    "oa_pitch": ("OA pitch", "0–1", "Overlap of the pitch histograms of the output and the human accompaniment."),
    "oa_duration": ("OA duration", "0–1", "Overlap of the note-length histograms with the human accompaniment."),
    "oa_ioi": ("OA inter-onset", "0–1", "Overlap of the inter-onset-interval histograms with the human accompaniment."),
    "notes_edited": (
        "notes edited at the end",
        "notes",
        "Notes the system's final correction changed (empty for systems that correct nothing).",
    ),
    "key_fixes": ("wrong notes fixed at the end", "notes", "Out-of-key notes the final correction had to fix."),
    "key_fixes_per_note": ("… per note", "% of notes", "The same, per note of the uncorrected prediction."),
    "diversity": ("diversity", "0–1", "How different the samples of one segment are across seeds (needs ≥ 2 seeds)."),
    # melody+accompaniment runs (eval.scoring.score_pieces)
    "out_of_key_rate_melody": ("out-of-key melody", "% of steps", "The out-of-key rate of the melody track alone."),
    "out_of_key_rate_accompaniment": (
        "out-of-key accompaniment",
        "% of steps",
        "The out-of-key rate of the accompaniment track alone.",
    ),
    "melody_notes": ("melody notes", "notes", "Notes in the melody (4 bars)."),
    "melody_range": ("melody range", "semitones", "Highest minus lowest melody pitch."),
    "melody_pitch_class_entropy": (
        "melody pitch-class entropy",
        "bits",
        "How evenly the melody uses the 12 pitch classes (0 = one, 3.58 = all equally).",
    ),
    "melody_longest_run": ("melody's longest phrase", "16ths", "The longest stretch the melody plays without a rest."),
    "melody_strong_beat_chord_tones": (
        "chord tones on strong beats",
        "0–1",
        "Share of melody notes on beats 1 and 3 that are tones of the chord.",
    ),
    "melody_silent_bars": ("bars without melody", "% of bars", "Bars in which no melody note sounds."),
    "melody_below_accompaniment": (
        "melody under the accompaniment",
        "% of steps",
        "Where both sound, the steps where the melody's top note is below the accompaniment's top note.",
    ),
}


HEADLINE = [
    (m, METRIC_INFO[m][0])
    for m in (
        "out_of_key_rate",
        "out_of_key_rate_paper_table",
        "chord_accuracy",
        "chord_similarity",
        "chord_similarity_full",
        "note_density",
    )
]
FULL = (
    HEADLINE[:2]
    + [(m, METRIC_INFO[m][0]) for m in ("key_out_of_key_rate",)]
    + HEADLINE[2:]
    + [
        (m, METRIC_INFO[m][0])
        for m in ("chord_accuracy_labels", "groove_similarity", "oa_pitch", "key_fixes", "key_fixes_per_note")
    ]
)


def cell(summary: pd.DataFrame, system: str, metric: str) -> str:
    """``mean ± ci`` of one metric, '–' where the run has no value."""
    if system not in summary.index or metric not in summary or pd.isna(summary.loc[system, metric]):
        return "–"
    mean, ci = summary.loc[system, metric], summary.loc[system].get(f"{metric}_ci95", float("nan"))
    if metric in PERCENT:
        return f"{100 * mean:.2f} % ± {100 * ci:.2f}"
    digits = (
        1
        if metric
        in (
            "note_density",
            "key_fixes",
            "polyphony",
            "pitch_range",
            "notes_edited",
            "melody_notes",
            "melody_range",
            "melody_longest_run",
        )
        else 3
    )
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """A run's summary as people read it: one row per system, "mean ± CI" cells under
    "name (unit)" headers, and only the metrics the run computed."""
    summary = summary.set_index("system") if "system" in summary else summary
    metrics = [m for m in METRIC_INFO if m in summary and summary[m].notna().any()]
    table = pd.DataFrame(
        {"system": summary.index, "segments × seeds": summary["n"].astype(int).values}
        if "n" in summary
        else {"system": summary.index}
    )
    for metric in metrics:
        label, unit, _ = METRIC_INFO[metric]
        table[f"{label} ({unit})"] = [cell(summary, system, metric) for system in summary.index]
    return table


def load(folder: str | Path) -> pd.DataFrame:
    path = Path(folder) / "summary.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no summary.csv in {folder}")
    return pd.read_csv(path).set_index("system")


def headline_table(runs: dict[str, pd.DataFrame], systems=("fgg", "no_fgg")) -> str:
    """One row per metric, one column per run × system."""
    columns = [(name, system) for name in runs for system in systems]
    lines = [
        "| | " + " | ".join(f"{name} `{system}`" for name, system in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for metric, label in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(cell(runs[n], s, metric) for n, s in columns) + " |")
    return "\n".join(lines)


COMBINED_FULL = [(m, METRIC_INFO[m][0]) for m in COMBINED_METRICS]


def is_combined(frame: pd.DataFrame) -> bool:
    return "out_of_key_rate_melody" in frame


def full_table(summary: pd.DataFrame) -> str:
    """One row per system, one column per metric (the combined mode's own for its runs)."""
    return system_table(summary, COMBINED_FULL if is_combined(summary) else FULL)


# What ``python -m eval.run`` prints when it is done: the headline metrics of the run's mode.
CONSOLE = HEADLINE + [("groove_similarity", METRIC_INFO["groove_similarity"][0])]
COMBINED_CONSOLE = [
    (m, METRIC_INFO[m][0])
    for m in (
        "out_of_key_rate",
        "out_of_key_rate_melody",
        "chord_accuracy_labels",
        "chord_similarity_full",
        "melody_pitch_class_entropy",
    )
]


def console_summary(summary: pd.DataFrame) -> str:
    """A fresh run's ``summary.csv`` (as ``eval.run.run`` returns it) as the markdown table
    ``eval.run`` prints: one row per system, its mode's headline metrics."""
    summary = summary.set_index("system") if "system" in summary else summary
    return system_table(summary, COMBINED_CONSOLE if is_combined(summary) else CONSOLE)


def system_table(summary: pd.DataFrame, columns: list[tuple[str, str]]) -> str:
    """One row per system (``summary`` indexed by system), one column per (metric, label)."""
    lines = ["| system | " + " | ".join(label for _, label in columns) + " |", "|---|" + "---|" * len(columns)]
    for system in summary.index:
        lines.append(
            f"| `{system}` (n = {int(summary.loc[system, 'n'])}) | "
            + " | ".join(cell(summary, system, m) for m, _ in columns)
            + " |"
        )
    return "\n".join(lines)


PAIRED = [
    ("chord_accuracy", "chord accuracy"),
    ("chord_similarity", "chord similarity (smg)"),
    ("chord_similarity_full", "chord similarity (full)"),
    ("out_of_key_rate_paper_table", "out-of-key (paper's table)"),
]
COMBINED_PAIRED = [
    ("chord_accuracy", "chord accuracy"),
    ("chord_accuracy_labels", "chord acc. vs input"),
    ("chord_similarity_full", "chord similarity (full)"),
    ("melody_strong_beat_chord_tones", "chord tones on strong beats"),
    ("melody_pitch_class_entropy", "melody pitch-class entropy"),
    ("melody_range", "melody range"),
    ("melody_longest_run", "melody's longest phrase"),
    ("melody_silent_bars", "bars without melody"),
    ("melody_below_accompaniment", "melody under the accompaniment"),
]


def paired_table(per_sample: pd.DataFrame, system: str) -> str:
    """Mean per-segment difference ``system − other`` with its 95 % CI (1.96 · s / √n over the
    segments both have), for each other system: the comparison the README states."""
    metrics = [(m, label) for m, label in (COMBINED_PAIRED if is_combined(per_sample) else PAIRED) if m in per_sample]
    wide = {m: per_sample.pivot_table(index=["segment", "seed"], columns="system", values=m) for m, _ in metrics}
    others = [s for s in per_sample.system.unique() if s != system]
    lines = [
        f"| `{system}` minus | " + " | ".join(label for _, label in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for other in others:
        cells = []
        for metric, _ in metrics:
            diff = (wide[metric][system] - wide[metric][other]).dropna()
            ci = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            cells.append(f"{diff.mean():+.4f} ± {ci:.4f}")
        lines.append(f"| `{other}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_per_sample(folder: str | Path) -> pd.DataFrame:
    path = Path(folder) / "per_sample.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no per_sample.csv in {folder}")
    return pd.read_csv(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.table", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluation folders (each with summary.csv)")
    parser.add_argument("--full", action="store_true", help="every system and metric of each run")
    parser.add_argument("--paired", metavar="SYSTEM", help="per-segment differences SYSTEM minus every other system")
    parser.add_argument(
        "--against",
        metavar="RUN",
        help="with --paired: also minus the systems of another run (same segments and seeds), named 'system (RUN)'",
    )
    args = parser.parse_args(argv)
    try:
        if args.paired:
            other = None if args.against is None else read_per_sample(args.against)
            for folder in args.runs:
                per_sample = read_per_sample(folder)
                if other is not None:
                    renamed = other.assign(system=other.system + f" ({Path(args.against).name})")
                    per_sample = pd.concat([per_sample, renamed[renamed.segment.isin(per_sample.segment)]])
                print(f"### {Path(folder).name}\n\n{paired_table(per_sample, args.paired)}\n")
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
