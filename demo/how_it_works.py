"""The app's "How it works" example: the same 4 bars sampled with FGG off and on
(``python -m demo.how_it_works`` writes ``assets/how_it_works.npz``; the app only reads it).

The segment is the validation segment (with a melody, of typical density) where the committed
evaluation of the ``paper`` model found the most out-of-key notes without FGG; both rolls are
re-sampled with that run's settings and seed, so they are the evaluation's own samples of
that segment.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from eval.baselines import EvalContext, SegmentBatch, run_system
from eval.run import item_seed
from fgg.checkpoint import load_model, resolve_checkpoint
from fgg.data import load_valid_segments
from fgg.pianoroll import out_of_key_notes
from fgg.sampling import SamplingOptions

ASSET = Path(__file__).resolve().parent.parent / "assets" / "how_it_works.npz"
EVAL_RUN = Path(__file__).resolve().parent.parent / "assets" / "eval" / "paper"


def pick_segment(per_sample: pd.DataFrame, segments: dict) -> int:
    """The segment whose ``no_fgg`` sample has the most out-of-key notes (rate × notes), among
    those with a melody and a typical texture (notes per bar between the run's quartiles, so
    the example is not one of the few runaway samples with 90 notes a bar); ties go to the
    lower index."""
    rows = per_sample[(per_sample.system == "no_fgg") & (per_sample.seed == 0)].copy()
    low, high = rows.note_density.quantile([0.25, 0.75])
    has_melody = np.array([bool(segments["melody"][s].any()) for s in rows.segment])
    rows = rows[rows.note_density.between(low, high).to_numpy() & has_melody]
    if rows.empty:
        raise ValueError("the evaluation run has no no_fgg rows for a segment with a melody")
    rows["bad_notes"] = rows.out_of_key_note_rate * rows.note_density * 4
    return int(rows.sort_values(["bad_notes", "segment"], ascending=[False, True]).segment.iloc[0])


def build(run_folder: Path = EVAL_RUN, model: str = "paper", out: Path = ASSET) -> dict:
    settings = json.loads((run_folder / "run.json").read_text())
    segments = load_valid_segments()
    index = pick_segment(pd.read_csv(run_folder / "per_sample.csv"), segments)
    net, _ = load_model(resolve_checkpoint(model), "cpu")
    ctx = EvalContext(
        net,
        options=SamplingOptions(
            cfg_scale=settings["cfg_scale"], steps=settings["steps"], precision=settings.get("precision", "fp32")
        ),
    )
    batch = SegmentBatch.from_segments(segments, [index])
    rolls = {name: run_system(name, batch, [item_seed(0, index)], ctx).rolls[0] for name in ("no_fgg", "fgg")}
    np.savez_compressed(
        out,
        segment=index,
        off=rolls["no_fgg"],
        on=rolls["fgg"],
        melody=segments["melody"][index],
        labels=segments["chord_labels"][index],
        allowed=batch.allowed[0],
        tempo=segments["tempo"][index],
    )
    return {
        "segment": index,
        "out_of_key_notes_off": out_of_key_notes(rolls["no_fgg"], batch.allowed[0]),
        "out_of_key_notes_on": out_of_key_notes(rolls["fgg"], batch.allowed[0]),
        "wrote": str(out),
    }


def load_example(path: Path = ASSET) -> dict | None:
    """The stored example (rolls, melody, chord labels, allowed pitch classes), or None."""
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        example = {k: z[k] for k in z.files}
    example["labels"] = [str(x) for x in example["labels"]]
    return example


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.how_it_works", description=__doc__.split("\n")[0])
    parser.add_argument("--run", default=str(EVAL_RUN), help="evaluation folder to pick the segment from")
    parser.add_argument("--model", default="paper")
    parser.add_argument("--out", default=str(ASSET))
    args = parser.parse_args(argv)
    try:
        print(json.dumps(build(Path(args.run), args.model, Path(args.out))))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
