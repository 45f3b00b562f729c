"""Scoring the systems' samples, per mode: one registry entry (``SCORERS``) per ``fgg.modes`` mode.

An entry says what the evaluation gives the model of that mode (the segment's rhythm or the
null rhythm) and how a batch of its samples becomes ``per_sample.csv`` rows: ``score_rows``
for the accompaniment (``eval.table.METRIC_COLUMNS``), ``score_combined`` for a melody and an
accompaniment from the chords alone (``eval.table.COMBINED_METRICS``). ``eval.run`` drives
every mode through it; ``eval/METRICS.md`` defines the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from eval import metrics as M
from eval.baselines import split_tracks
from eval.chord_metrics import ChordScorer
from eval.melody_metrics import melody_statistics
from eval.table import COMBINED_METRICS, METRIC_COLUMNS
from fgg.guidance import chord_allowed_pitch_classes
from fgg.modes import ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT, Mode
from fgg.pianoroll import LOWEST_PITCH


class Job(NamedTuple):
    """One sample to score (picklable: scoring runs in worker processes)."""

    system: str
    segment: int
    seed: int
    roll: np.ndarray  # (C, T, P) bool, the mode's tracks
    guide_allowed: np.ndarray  # (T, 12) bool: the set the system's correction enforced
    uncorrected: np.ndarray | None  # (C, T, P) bool: the prediction before that correction


def table_allowed(segments: dict, seg: int, table: str = "ours") -> np.ndarray:
    """(T, 12) allowed pitch classes of segment ``seg`` under chord -> scale ``table``."""
    return chord_allowed_pitch_classes(
        torch.from_numpy(segments["root"][seg].astype(np.int64)), torch.from_numpy(segments["chroma"][seg]), table
    ).numpy()


def root_relative_out_of_key(roll: np.ndarray, allowed: np.ndarray, root: np.ndarray) -> np.ndarray:
    """(12,) counts of out-of-key sounding pixels of every track of a (C, T, P) roll, by
    interval above the chord root."""
    counts = np.zeros(12, dtype=np.int64)
    for c in range(0, len(roll), 2):
        bad = M.sounding(roll[c : c + 2]) & ~M.pixel_allowed(allowed)  # (T, 64)
        t, p = np.nonzero(bad)
        counts += np.bincount((p + LOWEST_PITCH - np.maximum(root[t], 0)) % 12, minlength=12)
    return counts


def score_rows(jobs: list[Job], segments: dict, scorer: ChordScorer) -> list[list]:
    """Every accompaniment metric of a batch of samples -> CSV rows (``system, segment, seed``
    then ``METRIC_COLUMNS``). The out-of-key rates use fixed tables whatever guided the
    system (ours, and the paper's); ``key_fixes`` counts against ``guide_allowed``, the set
    the system's correction enforced. The chord metrics of the whole batch share one
    chord-encoder forward."""
    # smg_metrics' top-level names import its whole package (~5 s): only scoring needs it
    from smg_metrics import out_of_key_fraction

    segs = [int(job.segment) for job in jobs]
    chords = scorer.score_many(
        [job.roll for job in jobs],
        [str(seg) for seg in segs],
        [segments["accompaniment"][seg] for seg in segs],
        [segments["chord_labels"][seg] for seg in segs],
    )
    lines = []
    for i, (job, chord) in enumerate(zip(jobs, chords, strict=True)):
        roll, seg = job.roll, int(job.segment)
        gt = segments["accompaniment"][seg]
        key_allowed = M.key_allowed(segments["key_tonic"][seg], segments["key_minor"][seg])
        ours, paper = table_allowed(segments, seg, "ours"), table_allowed(segments, seg, "paper")
        row = {
            "out_of_key_rate": M.out_of_key_rate(roll, ours),
            "out_of_key_rate_paper_table": M.out_of_key_rate(roll, paper),
            "out_of_key_note_rate": M.out_of_key_note_rate(roll, ours),
            "key_out_of_key_rate": M.out_of_key_rate(roll, key_allowed),
            "note_density": M.note_density(roll),
            "polyphony": M.polyphony(roll),
            "pitch_range": M.pitch_range(roll),
            "groove_similarity": M.groove_similarity(roll, gt),
            "smg_out_of_key_fraction": out_of_key_fraction(scorer.pred_path(i)) if roll[0].any() else 0.0,
            **_correction_metrics(roll, job.uncorrected, job.guide_allowed),
            **M.overlap_metrics(roll, gt),
            **chord,
        }
        lines.append([job.system, seg, job.seed] + [row[c] for c in METRIC_COLUMNS])
    return lines


def _correction_metrics(roll: np.ndarray, uncorrected: np.ndarray | None, allowed: np.ndarray) -> dict[str, float]:
    """How much the system's final correction edited (NaN where nothing was corrected)."""
    if uncorrected is None:
        return dict.fromkeys(("notes_edited", "key_fixes", "key_fixes_per_note"), float("nan"))
    return {
        "notes_edited": M.notes_changed(roll, uncorrected),
        "key_fixes": M.out_of_key_notes(uncorrected, allowed),
        "key_fixes_per_note": M.out_of_key_note_rate(uncorrected, allowed),
    }


def score_pieces(
    melody: np.ndarray, accompaniment: np.ndarray, segments: dict, index: np.ndarray, scorer: ChordScorer
) -> list[dict[str, float]]:
    """One row of ``COMBINED_METRICS`` per piece (melody, accompaniment (B, 2, T, P)): the
    out-of-key rate of each track and of the whole texture (our table; the whole texture's
    also under the paper's), the chords recognised
    in the whole texture against the conditioning chords and against the ground truth's,
    chord similarity, and the melody statistics of ``eval.melody_metrics``."""
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
        allowed = table_allowed(segments, int(i))
        rows.append(
            {
                "out_of_key_rate": M.out_of_key_rate(whole[b], allowed),
                "out_of_key_rate_paper_table": M.out_of_key_rate(whole[b], table_allowed(segments, int(i), "paper")),
                "out_of_key_rate_melody": M.out_of_key_rate(melody[b], allowed),
                "out_of_key_rate_accompaniment": M.out_of_key_rate(accompaniment[b], allowed),
                "chord_accuracy_labels": chords[b]["chord_accuracy_labels"],
                "chord_accuracy": chords[b]["chord_accuracy"],
                "chord_similarity_full": chords[b]["chord_similarity_full"],
                "note_density": M.note_density(accompaniment[b]),
                **melody_statistics(melody[b], accompaniment[b], segments["chroma"][i]),
            }
        )
    return rows


def score_combined(jobs: list[Job], segments: dict, scorer: ChordScorer) -> list[list]:
    """``score_pieces`` of melody+accompaniment samples -> CSV rows (``system, segment, seed``
    then ``COMBINED_METRICS``)."""
    tracks = split_tracks(MELODY_AND_ACCOMPANIMENT, np.stack([job.roll for job in jobs]))
    index = np.array([int(job.segment) for job in jobs])
    rows = score_pieces(tracks["melody"], tracks["accompaniment"], segments, index, scorer)
    return [
        [job.system, int(job.segment), job.seed] + [row[c] for c in COMBINED_METRICS]
        for job, row in zip(jobs, rows, strict=True)
    ]


@dataclass(frozen=True)
class Scorer:
    """How the evaluation treats one mode."""

    columns: tuple[str, ...]  # per_sample.csv's metric columns (eval.table)
    score: Callable[[list[Job], dict, ChordScorer], list[list]]  # jobs -> rows (key columns, then ``columns``)
    rhythm: bool  # the model gets the segment's rhythm (False: the null rhythm)
    given: str  # what the model gets, in words (run.json's ``input``)


SCORERS: dict[Mode, Scorer] = {
    ACCOMPANIMENT: Scorer(METRIC_COLUMNS, score_rows, rhythm=True, given="chords + rhythm + melody"),
    MELODY_AND_ACCOMPANIMENT: Scorer(COMBINED_METRICS, score_combined, rhythm=False, given="chords only (null rhythm)"),
}
