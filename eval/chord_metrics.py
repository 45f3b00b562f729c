"""Chord metrics through ``smg-metrics`` (the FGG paper's chord accuracy and chord similarity).

The smg functions read MIDI files; ``ChordScorer`` writes each roll once to a temporary MIDI
file and caches the ground-truth side (recognised chords, chord-encoder vectors), so scoring
many systems against the same segment repeats no work. The numbers equal
``smg_metrics.compute_ca(pred, ref, method="dp")`` and ``smg_metrics.compute_cs(pred, ref)``
(asserted by ``tests/test_eval.py``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from fgg.chords import pitch_class
from fgg.pianoroll import rolls_to_midi

MIDI_TEMPO = 120.0  # any constant tempo: the recognisers work per beat


def normalize_label(label: str) -> tuple[int, str] | None:
    """(root pitch class, 'maj'|'min') as smg compares chords, or None for no chord;
    roots compared as pitch classes so that enharmonic spellings (A#/Bb) agree."""
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
    """Accuracy of the recognised chords against the conditioning chord labels, over beats
    whose condition is a chord (N beats left out); NaN if there are none."""
    pairs = [(p, r) for p, r in zip(predicted, condition_labels) if normalize_label(r) is not None]
    if not pairs:
        return float("nan")
    return float(np.mean([normalize_label(p) == normalize_label(r) for p, r in pairs]))


class ChordScorer:
    """Scores generated accompaniment rolls against a reference roll (accompaniment only,
    melody excluded, 4/4 at a constant tempo)."""

    def __init__(self, workdir: str | os.PathLike | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="fgg-chords-") if workdir is None else None
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._reference: dict[str, tuple[list[str], np.ndarray, str]] = {}
        self._model = None

    def _write(self, roll: np.ndarray, name: str) -> str:
        path = str(self.workdir / f"{name}.mid")
        rolls_to_midi({"accompaniment": roll}, MIDI_TEMPO).write(path)
        return path

    def _encoder(self):
        if self._model is None:
            from smg_metrics.chord_similarity import _get_cached_model

            weights = Path(__import__("smg_metrics").__file__).parent / "model_weights" / "polydis-v1-chd_encoder_only.pt"
            self._model = _get_cached_model(weights, "cpu")  # loaded once per process
        return self._model

    def _analyse(self, path: str) -> tuple[list[str], np.ndarray]:
        from smg_metrics import extract_chord_vectors, midi_to_chords_dp

        labels = midi_to_chords_dp(path)
        try:
            vectors = extract_chord_vectors(path)
        except (ValueError, IndexError):
            vectors = np.zeros((0, 8, 36))
        return labels, vectors

    @torch.no_grad()
    def _encode(self, vectors: np.ndarray) -> torch.Tensor:
        if len(vectors) == 0:
            return torch.zeros(0, 1)
        model = self._encoder()
        return torch.cat([model.encode(torch.from_numpy(v).float().unsqueeze(0).to(model.device)) for v in vectors])

    def reference(self, key: str, roll: np.ndarray):
        if key not in self._reference:
            path = self._write(roll, f"ref-{key}")
            labels, vectors = self._analyse(path)
            self._reference[key] = (labels, self._encode(vectors), path)
        return self._reference[key]

    def score(self, roll: np.ndarray, reference_key: str, reference_roll: np.ndarray,
              condition_labels: list[str] | None = None) -> dict[str, float]:
        """chord_accuracy (vs the reference's recognised chords), chord_accuracy_labels (vs
        the conditioning labels), chord_similarity (PolyDis chord-encoder cosine, NaN if
        either side is too short to encode)."""
        ref_labels, ref_z, _ = self.reference(reference_key, reference_roll)
        labels, vectors = self._analyse(self._write(roll, "pred"))
        z = self._encode(vectors)
        n = min(len(z), len(ref_z))
        similarity = float(torch.nn.functional.cosine_similarity(z[:n], ref_z[:n]).mean()) if n else float("nan")
        out = {"chord_accuracy": chord_accuracy(labels, ref_labels), "chord_similarity": similarity}
        if condition_labels is not None:
            out["chord_accuracy_labels"] = label_chord_accuracy(labels, list(condition_labels))
        return out
