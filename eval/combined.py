"""Evaluation of the melody+accompaniment mode (``python -m eval.run --mode melody+accompaniment``).

The input is the chords alone (no melody, no rhythm: the null rhythm condition), the output a
melody and an accompaniment. Systems: ``fgg`` and ``no_fgg`` (same model, same starting
noise per segment and seed) and ``ground_truth`` (POP909's melody and accompaniment). Per
segment: the out-of-key rate of each track and of the whole texture, the chords recognised
in the whole texture against the conditioning chords and against the ground truth's
(smg-metrics), chord similarity, and the melody statistics of ``eval.melody_metrics``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eval import metrics as M
from eval.baselines import canonical, item_generators
from eval.chord_metrics import ChordScorer
from eval.melody_metrics import melody_statistics
from eval.table import COMBINED_METRICS
from fgg.data import load_valid_segments
from fgg.diffusion import Schedule
from fgg.generate import SamplingOptions, build_conditions, fgg_pixel_mask, sample_batch
from fgg.guidance import chord_allowed_pitch_classes
from fgg.pianoroll import N_PITCHES

SYSTEMS = ("fgg", "no_fgg", "ground_truth")
COLUMNS = list(COMBINED_METRICS)


def sample_tracks(
    model,
    segments: dict,
    index: np.ndarray,
    seeds: list[int],
    options: SamplingOptions,
    fgg: bool,
    schedule: Schedule | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(melody, accompaniment) rolls (B, 2, T, P) bool of a melody+accompaniment model for
    segments ``index`` from their chords alone; item b's noise comes from ``seeds[b]``."""
    chroma, root = segments["chroma"][index], segments["root"][index]
    n_steps = chroma.shape[1]
    cond, null = build_conditions(chroma, None, None, "melody+accompaniment")  # (B, 2, T, P) each
    allowed = chord_allowed_pitch_classes(torch.from_numpy(root.astype(np.int64)), torch.from_numpy(chroma)).numpy()
    generators = item_generators(seeds)
    x_init = torch.stack([torch.randn(4, n_steps, N_PITCHES, generator=g) for g in generators])  # (B, 4, T, P)
    out = sample_batch(
        model,
        schedule or Schedule.paper(),
        cond,
        null,
        fgg_pixel_mask(allowed, chroma, root),
        None,
        x_init,
        replace(options, fgg=fgg),
        generator=generators,
    )
    rolls = out.numpy()  # (B, 4, T, P): melody, accompaniment
    return np.stack([canonical(r[:2]) for r in rolls]), np.stack([canonical(r[2:]) for r in rolls])


def score_pieces(
    melody: np.ndarray, accompaniment: np.ndarray, segments: dict, index: np.ndarray, scorer: ChordScorer
) -> list[dict[str, float]]:
    """One row of ``COLUMNS`` per piece (melody, accompaniment (B, 2, T, P))."""
    whole = melody | accompaniment  # (B, 2, T, P) the texture, as one roll
    truth = segments["melody"][index] | segments["accompaniment"][index]
    chords = scorer.score_many(
        list(whole),
        [f"whole{int(i)}" for i in index],
        list(truth),
        [list(map(str, segments["chord_labels"][i])) for i in index],
    )
    rows = []
    for b, i in enumerate(index):
        allowed = chord_allowed_pitch_classes(
            torch.from_numpy(segments["root"][i].astype(np.int64)), torch.from_numpy(segments["chroma"][i])
        ).numpy()
        rows.append(
            {
                "out_of_key_rate": M.out_of_key_rate(whole[b], allowed),
                "out_of_key_rate_melody": M.out_of_key_rate(melody[b], allowed),
                "out_of_key_rate_accompaniment": M.out_of_key_rate(accompaniment[b], allowed),
                "chord_accuracy_labels": chords[b]["chord_accuracy_labels"],
                "chord_accuracy": chords[b]["chord_accuracy"],
                "chord_similarity_full": chords[b]["chord_similarity_full"],
                "note_density": M.note_density(accompaniment[b]),
                **melody_statistics(melody[b], segments["chroma"][i]),
            }
        )
    return rows


def run_combined(
    segments_file,
    n_segments: int | None,
    out: Path,
    model: torch.nn.Module,
    model_name: str,
    options: SamplingOptions = SamplingOptions(),
    batch_size: int = 16,
    progress=None,
) -> pd.DataFrame:
    """Sample and score every system on ``n_segments`` validation segments (one seed); writes
    ``per_sample.csv`` and ``summary.csv`` to ``out`` and returns the summary."""
    from eval.run import item_seed, select_segments, summarize

    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    segments = load_valid_segments(segments_file)
    chosen = select_segments(len(segments["song_id"]), n_segments)
    scorer = ChordScorer(out / ".work")
    rows, total, done = [], len(SYSTEMS) * len(chosen), 0
    for system in SYSTEMS:
        for lo in range(0, len(chosen), batch_size):
            index = chosen[lo : lo + batch_size]
            if system == "ground_truth":
                melody, accompaniment = segments["melody"][index], segments["accompaniment"][index]
            else:
                melody, accompaniment = sample_tracks(
                    model, segments, index, [item_seed(0, int(s)) for s in index], options, fgg=system == "fgg"
                )
            for s, row in zip(index, score_pieces(melody, accompaniment, segments, index, scorer), strict=True):
                rows.append({"system": system, "segment": int(s), "seed": 0, **row})
            done += len(index)
            if progress is not None:
                progress(done, total)
    per_sample = pd.DataFrame(rows)
    per_sample.to_csv(out / "per_sample.csv", index=False)
    summary = summarize(per_sample, out, list(SYSTEMS), 1, COLUMNS)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "run.json").write_text(
        json.dumps(
            {
                "model": model_name,
                "mode": "melody+accompaniment",
                "input": "chords only (null rhythm)",
                "cfg_scale": options.cfg_scale,
                "steps": options.steps,
                "precision": options.precision,
                "segments": len(chosen),
                "seconds": round(time.perf_counter() - began, 1),
            },
            indent=2,
        )
    )
    return summary
