"""Does FGG make the model write in a mode it hardly saw? (``python -m eval.style_check``)

    python -m eval.style_check --checkpoint runs/combined-small/model.safetensors --pieces 20 --out assets/eval

For each style preset (``fgg.styles``), ``--pieces`` pieces (seeds 0…n−1) with FGG on and off,
the scale strict (no chord tones added), every generated note counted — melody and
accompaniment in melody+accompaniment mode. Two shares per piece: notes outside the scale
(0 with FGG, by construction) and notes on the mode's characteristic pitch classes (B♮ in
D Dorian): evidence that the music *sounds* modal, not merely filtered. Writes
``style_check.csv`` (one row per piece) and ``style_check.json`` (the command, model and cost)
and prints the table the README shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from eval.melody_metrics import pitch_class_share
from eval.metrics import out_of_key_note_rate
from fgg.generate import Generator
from fgg.pianoroll import roll_to_notes
from fgg.precision import device_description
from fgg.styles import STYLES


def check(generator: Generator, pieces: int = 20, bars: int = 8) -> pd.DataFrame:
    rows = []
    for style in STYLES.values():
        for fgg in (True, False):
            for seed in range(pieces):
                r = generator.generate(
                    style.chords, scale=style.scale, scale_mode="strict", fgg=fgg, bars=bars, seed=seed
                )
                tracks = [r.accompaniment] + ([r.melody] if r.melody_generated else [])
                whole = np.concatenate(tracks, axis=1)  # the tracks one after the other in time
                allowed = np.concatenate([r.allowed] * len(tracks))
                rows.append(
                    {
                        "style": style.name,
                        "fgg": fgg,
                        "seed": seed,
                        "notes": sum(len(roll_to_notes(t)) for t in tracks),
                        "outside_scale": out_of_key_note_rate(whole, allowed),
                        "characteristic": pitch_class_share(whole, style.characteristic_pitch_classes),
                    }
                )
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame) -> str:
    """Mean ± 95 % CI per style × FGG, as markdown."""
    lines = [
        "| style | FGG | notes outside the scale | notes on the characteristic degree(s) | notes / piece |",
        "|---|---|---|---|---|",
    ]
    for (style, fgg), part in rows.groupby(["style", "fgg"], sort=False):
        cells = []
        for column in ("outside_scale", "characteristic"):
            values = part[column].dropna()
            ci = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            cells.append(f"{100 * values.mean():.1f} % ± {100 * ci:.1f}")
        lines.append(
            f"| {style} ({', '.join(STYLES[style].characteristic)}) | {'on' if fgg else 'off'} | "
            + " | ".join(cells)
            + f" | {part.notes.mean():.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.style_check", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint (or a shipped model's name)")
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--out", help="folder for style_check.csv")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        generator = Generator.from_checkpoint(args.checkpoint, args.device)
        rows = check(generator, args.pieces, args.bars)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        rows.to_csv(Path(args.out) / "style_check.csv", index=False)
        record = {
            "command": "python -m eval.style_check " + " ".join(argv if argv is not None else sys.argv[1:]),
            "checkpoint": str(args.checkpoint),
            "mode": generator.mode.name,
            "pieces": args.pieces,
            "bars": args.bars,
            "precision": generator.precision,
            "device": device_description(generator.device),
            "seconds": round(time.perf_counter() - began, 1),
        }
        (Path(args.out) / "style_check.json").write_text(json.dumps(record, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
