"""How far two evaluation runs' samples agree (``python -m eval.precision_agreement``).

    python -m eval.precision_agreement FP32_RUN BF16_RUN [--json out.json]

Made for the bf16-vs-fp32 question: the same model, segments and seeds sampled in two
precisions (``eval.run --precision``). For every model-sampled system stored in both runs'
``rolls/`` (on the segments both hold, finished or checkpointed), it prints the share of
roll pixels (onset + sustain) that are equal, the share of notes of each run that the other
has too (same onset step, pitch and length), the share of segments whose roll is identical,
the out-of-key notes of each (chord-derived table; FGG's must be 0 in both) and, from each
run's ``per_sample.csv``, the means of the headline metrics over those same segments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from eval.baselines import STOCHASTIC
from eval.run import RUN_SETTINGS_FILE, load_stored_rolls
from eval.scoring import table_allowed
from fgg.data import load_valid_segments
from fgg.pianoroll import out_of_key_notes, roll_to_notes


def _stored(folder: Path, system: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(segments, rolls) of one system's seed-0 rolls that were actually sampled."""
    path = folder / "rolls" / f"{system}_seed0.npz"
    if not path.is_file():
        return None
    segments = np.load(path)["segments"]
    stored = load_stored_rolls(path, segments)
    if stored is None:
        return None
    rolls, filled = stored
    return segments[filled], rolls[filled]


def note_agreement(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """(notes in a, notes in b, notes in both) of two (2, T, P) rolls; a note is (start, end, pitch)."""
    na, nb = ({tuple(n) for n in roll_to_notes(r)} for r in (a, b))
    return len(na), len(nb), len(na & nb)


METRICS = ("out_of_key_rate", "chord_accuracy", "chord_similarity_full")


def _metric_means(folder: Path, system: str, segments: np.ndarray) -> dict[str, float]:
    path = folder / "per_sample.csv"
    if not path.is_file():
        return {}
    rows = pd.read_csv(path)
    rows = rows[(rows.system == system) & rows.segment.isin(segments) & (rows.seed == 0)]
    return {m: float(rows[m].mean()) for m in METRICS} if len(rows) == len(segments) else {}


def compare(first: Path, second: Path, segments_data: dict) -> dict[str, dict]:
    """Per system present in both runs: agreement figures over their common segments."""
    report = {}
    for system in sorted(STOCHASTIC):
        one, two = _stored(first, system), _stored(second, system)
        if one is None or two is None:
            continue
        common, i, j = np.intersect1d(one[0], two[0], return_indices=True)
        if len(common) == 0:
            continue
        a, b = one[1][i], two[1][j]  # (N, 2, T, P) each
        counts = np.array([note_agreement(x, y) for x, y in zip(a, b, strict=True)])  # (N, 3)
        allowed = [table_allowed(segments_data, int(s), "ours") for s in common]
        report[system] = {
            "segments": int(len(common)),
            "pixels_equal": float((a == b).mean()),
            "segments_identical": float(np.mean([np.array_equal(x, y) for x, y in zip(a, b, strict=True)])),
            "notes_first_also_in_second": float(counts[:, 2].sum() / max(counts[:, 0].sum(), 1)),
            "notes_second_also_in_first": float(counts[:, 2].sum() / max(counts[:, 1].sum(), 1)),
            "notes_first": int(counts[:, 0].sum()),
            "notes_second": int(counts[:, 1].sum()),
            "out_of_key_notes_first": int(sum(out_of_key_notes(x, al) for x, al in zip(a, allowed, strict=True))),
            "out_of_key_notes_second": int(sum(out_of_key_notes(y, al) for y, al in zip(b, allowed, strict=True))),
        }
        for run, folder in (("first", first), ("second", second)):
            report[system].update({f"{m}_{run}": v for m, v in _metric_means(folder, system, common).items()})
    return report


def _precision(folder: Path) -> str:
    path = folder / RUN_SETTINGS_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("precision", "fp32") if path.is_file() else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.precision_agreement", description=__doc__.split("\n")[0])
    parser.add_argument("first", help="an eval.run folder (e.g. the fp32 run)")
    parser.add_argument("second", help="another eval.run folder (e.g. the bf16 run)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    first, second = Path(args.first), Path(args.second)
    report = compare(first, second, load_valid_segments())
    if not report:
        print(f"error: {first} and {second} share no sampled system on common segments", file=sys.stderr)
        return 2
    doc = {
        "first": str(first),
        "first_precision": _precision(first),
        "second": str(second),
        "second_precision": _precision(second),
        "systems": report,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    print(
        f"{'system':<12} {'segments':>8} {'pixels equal':>13} {'identical':>10} {'notes kept':>11} "
        f"{'out-of-key':>11}  metric means first / second"
    )
    for system, r in report.items():
        means = "  ".join(
            f"{m} {r[m + '_first']:.4f} / {r[m + '_second']:.4f}"
            for m in METRICS
            if m + "_first" in r and m + "_second" in r
        )
        print(
            f"{system:<12} {r['segments']:>8} {100 * r['pixels_equal']:>12.3f}% {100 * r['segments_identical']:>9.1f}% "
            f"{100 * r['notes_first_also_in_second']:>10.2f}% "
            f"{r['out_of_key_notes_first']:>5}/{r['out_of_key_notes_second']:<5} "
            f"{means}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
