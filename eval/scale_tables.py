"""Compare the two chord -> scale tables on the validation set (``python -m eval.scale_tables``).

For every 16th step that carries a chord (root known) in ``assets/pop909_valid_segments.npz``,
compares the allowed pitch classes of our table and of the paper's (``fgg.guidance``) and
prints one JSON line: chord steps, steps where the sets differ (and as a fraction), where ours
is a strict superset / strict subset of the paper's / neither, and the differing steps per
chord quality of our table. The figures in ``eval/METRICS.md`` come from this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import numpy as np
import torch

from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.guidance import QUALITIES, chord_allowed_pitch_classes, chord_quality


def compare_tables(root: np.ndarray, chroma: np.ndarray) -> dict:
    """root (N,) int with -1 = no chord, chroma (N, 12) -> counts of how the tables differ."""
    has_chord = root >= 0
    root_t = torch.from_numpy(root[has_chord].astype(np.int64))
    chroma_t = torch.from_numpy(chroma[has_chord])
    ours = chord_allowed_pitch_classes(root_t, chroma_t, "ours").numpy()  # (n, 12)
    paper = chord_allowed_pitch_classes(root_t, chroma_t, "paper").numpy()
    differ = (ours != paper).any(axis=1)
    superset = differ & (ours >= paper).all(axis=1)
    subset = differ & (ours <= paper).all(axis=1)
    qualities = chord_quality(root_t, chroma_t).numpy()
    n = int(has_chord.sum())
    return {
        "chord_steps": n,
        "differ": int(differ.sum()),
        "differ_fraction": round(float(differ.mean()), 4) if n else 0.0,
        "ours_strict_superset": int(superset.sum()),
        "ours_strict_subset": int(subset.sum()),
        "neither": int((differ & ~superset & ~subset).sum()),
        "differ_by_quality": {QUALITIES[q]: c for q, c in sorted(Counter(qualities[differ].tolist()).items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.scale_tables", description=__doc__.split("\n")[0])
    parser.add_argument("--segments-file", default=str(VALID_SEGMENTS_FILE))
    args = parser.parse_args(argv)
    seg = load_valid_segments(args.segments_file)
    print(json.dumps(compare_tables(seg["root"].reshape(-1), seg["chroma"].reshape(-1, 12))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
