"""Chord metrics through ``smg-metrics`` (the FGG paper's chord accuracy and chord similarity).

The smg functions read MIDI files; ``ChordScorer`` writes each roll once to a temporary MIDI
file and caches the ground-truth side (recognised chords, chord-encoder vectors), so scoring
many systems against the same segment repeats no work. The numbers equal
``smg_metrics.compute_ca(pred, ref, method="dp")`` and ``smg_metrics.compute_cs(pred, ref)``
(asserted by ``tests/test_eval.py``).

``compute_cs`` forms its 2-bar windows only while 8 more beats follow the window start, so on
a 4-bar segment it scores bars 1–2 only; ``chord_similarity_full`` builds the same per-beat
chord vectors (smg's recogniser, smg's vector layout, smg's encoder weights) on the segment's
own beat grid and averages over every 2-bar window (bars 1–2 and 3–4).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import smg_metrics  # the package itself is light; its submodules are imported where used
import torch

from fgg.chords import pitch_class
from fgg.pianoroll import rolls_to_midi

MIDI_TEMPO = 120.0  # any constant tempo: the recognisers work per beat
BEAT_SECONDS = 60.0 / MIDI_TEMPO
STEPS_PER_BEAT = 4
WINDOW_BEATS = 8  # PolyDis encodes 2 bars of 4/4


def recognize(midi_path: str) -> list[tuple[float, float, str]]:
    """smg's DP chord recognition, ``(start, end, label)`` intervals: exactly what
    ``recognize_chords_beat`` and ``midi_to_chords_dp`` compute (both call ``recognize_chords``
    with these defaults), run once instead of twice, and without the unused extra parse."""
    # smg_metrics' submodules are slow to import (up to ~5 s): only scoring needs them
    from smg_metrics.chord_recognition import ChordRecognitionDP

    return [
        (iv.start, iv.end, iv.label)
        for iv in ChordRecognitionDP(extra_division=2, use_transition=True).recognize(midi_path)
    ]


def labels_per_beat(intervals: list[tuple[float, float, str]], beats: np.ndarray) -> list[str]:
    """One label per beat from recognised intervals, as ``smg_metrics.midi_to_chords_dp``
    expands them: the interval containing the beat time, else ``N``; with fewer than 2
    beats or no intervals, the interval labels themselves."""
    if len(beats) < 2 or not intervals:
        return [lab for _, _, lab in intervals]
    labels, i = [], 0
    for bt in beats:
        while i < len(intervals) - 1 and intervals[i][1] <= bt:
            i += 1
        labels.append(intervals[i][2] if intervals[i][0] <= bt < intervals[i][1] else "N")
    return labels


def beat_chord_vectors(intervals: list[tuple[float, float, str]], midi, n_beats: int) -> np.ndarray:
    """(n_beats, 36) smg chord vectors [root one-hot | beat chroma | bass relative to root]
    on a fixed grid of ``n_beats`` beats of ``BEAT_SECONDS`` from t = 0, built exactly as
    ``smg_metrics.extract_chord_vectors`` builds each beat (label at the beat's midpoint from
    smg's recogniser, ``intervals`` = ``recognize(path)``; chroma = duration-weighted pitch
    classes of the notes that start in the beat, else of those sounding in it, normalised).
    ``midi``: the file, parsed (``pretty_midi.PrettyMIDI``). No intervals give ``N`` beats."""
    # smg_metrics' submodules are slow to import (up to ~5 s): only scoring needs them
    from smg_metrics.chord_similarity import _build_chord_vector

    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    vectors = np.zeros((n_beats, 36))
    for b in range(n_beats):
        start, end = b * BEAT_SECONDS, (b + 1) * BEAT_SECONDS
        mid = (start + end) / 2
        label = next((lab for s, e, lab in intervals if s <= mid < e), "N")
        active = [n for n in notes if start <= n.start < end] or [n for n in notes if n.start <= end and n.end >= start]
        chroma = np.zeros(12)
        for n in active:
            chroma[n.pitch % 12] += min(n.end, end) - max(n.start, start)
        if chroma.sum() > 0:
            chroma = chroma / chroma.sum()
        vectors[b] = _build_chord_vector(label, chroma)
    return vectors


def smg_window_count(midi) -> int:
    """How many 2-bar windows ``smg_metrics.extract_chord_vectors`` forms for a parsed MIDI
    file: starts 0, 8, … < len(beats) − 8, with pretty_midi's beats up to the file's end."""
    return len(range(0, len(midi.get_beats()) - WINDOW_BEATS, WINDOW_BEATS))


def normalize_label(label: str) -> tuple[int, str] | None:
    """(root pitch class, 'maj'|'min') as smg compares chords, or None for no chord;
    roots compared as pitch classes so that enharmonic spellings (A#/Bb) agree."""
    # smg_metrics' submodules are slow to import (up to ~5 s): only scoring needs them
    from smg_metrics.chord_accuracy import _normalize_label

    norm = _normalize_label(str(label))
    if norm == "N":
        return None
    root, family = norm.split(":")
    return pitch_class(root), family


def chord_accuracy(predicted: list[str], reference: list[str]) -> float:
    """smg's direct chord accuracy: matches / n over the first n = min(len) beats, labels
    compared as root + maj/min family (N counts as a label); 0 if n = 0."""
    n = min(len(predicted), len(reference))
    if n == 0:
        return 0.0
    return float(np.mean([normalize_label(predicted[i]) == normalize_label(reference[i]) for i in range(n)]))


def label_chord_accuracy(predicted: list[str], condition_labels: list[str]) -> float:
    """Accuracy of the recognised chords against the conditioning chord labels, over the first
    n = min(len) beats whose condition is a chord (N beats left out); NaN if there are none."""
    n = min(len(predicted), len(condition_labels))
    pairs = [(p, r) for p, r in zip(predicted[:n], condition_labels[:n], strict=True) if normalize_label(r) is not None]
    if not pairs:
        return float("nan")
    return float(np.mean([normalize_label(p) == normalize_label(r) for p, r in pairs]))


class ChordScorer:
    """Scores generated accompaniment rolls against a reference roll (accompaniment only,
    melody excluded, 4/4 at a constant tempo). ``score_many`` runs the chord encoder once for
    a whole batch of rolls (same weights, same numbers as one call per roll)."""

    def __init__(self, workdir: str | os.PathLike | None = None):
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fgg-chords-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._reference: dict[str, tuple[list[str], torch.Tensor, int, str]] = {}
        self._model = None

    def _write(self, roll: np.ndarray, name: str) -> str:
        path = str(self.workdir / f"{name}.mid")
        rolls_to_midi({"accompaniment": roll}, MIDI_TEMPO).write(path)
        return path

    def pred_path(self, i: int = 0) -> str:
        """The MIDI file ``score_many`` wrote for its ``i``-th roll (``score``: i = 0)."""
        return str(self.workdir / f"pred{i}.mid")

    def _encoder(self):
        if self._model is None:
            # smg_metrics' submodules are slow to import (up to ~5 s): only scoring needs them
            from smg_metrics.chord_similarity import _get_cached_model

            weights = Path(smg_metrics.__file__).parent / "model_weights" / "polydis-v1-chd_encoder_only.pt"
            self._model = _get_cached_model(weights, "cpu")  # loaded once per process
        return self._model

    def _analyse(self, path: str, n_steps: int) -> tuple[list[str], np.ndarray, int]:
        """(per-beat labels, (n_windows, 8, 36) chord vectors of every 2-bar window of the
        segment, how many of those windows smg's own ``compute_cs`` would use)."""
        midi = pretty_midi.PrettyMIDI(path)
        has_notes = any(inst.notes for inst in midi.instruments)
        intervals = recognize(path) if has_notes else []
        labels = labels_per_beat(intervals, midi.get_beats()) if has_notes else []
        n_beats = n_steps // STEPS_PER_BEAT
        vectors = beat_chord_vectors(intervals, midi, n_beats)
        windows = vectors[: n_beats // WINDOW_BEATS * WINDOW_BEATS].reshape(-1, WINDOW_BEATS, 36)
        return labels, windows, smg_window_count(midi) if has_notes else 0

    @torch.no_grad()
    def _encode(self, windows: list[np.ndarray]) -> list[torch.Tensor]:
        """Chord-encoder embeddings (n_windows_i, z) of each roll's windows, in one forward."""
        sizes = [len(w) for w in windows]
        if sum(sizes) == 0:
            return [torch.zeros(0, 1) for _ in windows]
        model = self._encoder()
        z = model.encode(torch.from_numpy(np.concatenate(windows)).float().to(model.device)).cpu()  # (N, z)
        return list(z.split(sizes))

    def reference(self, key: str, roll: np.ndarray):
        """(labels, window embeddings, smg window count, MIDI path) of a reference roll, cached."""
        if key not in self._reference:
            path = self._write(roll, f"ref-{key}")
            labels, windows, count = self._analyse(path, roll.shape[1])
            self._reference[key] = (labels, self._encode([windows])[0], count, path)
        return self._reference[key]

    def score(
        self,
        roll: np.ndarray,
        reference_key: str,
        reference_roll: np.ndarray,
        condition_labels: list[str] | None = None,
    ) -> dict[str, float]:
        """``score_many`` for one roll (its MIDI file is ``pred_path(0)``)."""
        return self.score_many(
            [roll], [reference_key], [reference_roll], None if condition_labels is None else [condition_labels]
        )[0]

    def score_many(self, rolls, reference_keys, reference_rolls, condition_labels=None) -> list[dict[str, float]]:
        """Per roll: chord_accuracy (vs the reference's recognised chords), chord_accuracy_labels
        (vs the conditioning labels, when given), chord_similarity (smg's ``compute_cs``:
        PolyDis chord-encoder cosine over the windows smg forms, NaN if either side has none)
        and chord_similarity_full (the same cosine averaged over every 2-bar window of the
        segment; NaN only for segments shorter than 2 bars). Roll i is written to
        ``pred_path(i)``."""
        analyses = [self._analyse(self._write(roll, f"pred{i}"), roll.shape[1]) for i, roll in enumerate(rolls)]
        embeddings = self._encode([windows for _, windows, _ in analyses])
        results = []
        for i, ((labels, _, windows), z) in enumerate(zip(analyses, embeddings, strict=True)):
            ref_labels, ref_z, ref_windows, _ = self.reference(reference_keys[i], reference_rolls[i])
            cosine = torch.nn.functional.cosine_similarity(z, ref_z) if len(z) else torch.zeros(0)  # (n_windows,)
            n = min(windows, ref_windows)
            out = {
                "chord_accuracy": chord_accuracy(labels, ref_labels),
                "chord_similarity": float(cosine[:n].mean()) if n else float("nan"),
                "chord_similarity_full": float(cosine.mean()) if len(cosine) else float("nan"),
            }
            if condition_labels is not None:
                out["chord_accuracy_labels"] = label_chord_accuracy(labels, list(condition_labels[i]))
            results.append(out)
        return results
