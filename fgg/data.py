"""POP909 -> cached songs -> 4-bar training segments (``python -m fgg.data``).

Where the data comes from: the POP909 folder layout (``NNN/NNN.mid``, ``beat_midi.txt``,
``chord_midi.txt``, ``key_audio.txt``, ``index.csv``) of the public repository
https://github.com/music-x-lab/POP909-Dataset (folder ``POP909``). Point ``--pop909`` or
``FGG_POP909_DIR`` at it. Triple-meter songs (``index.csv``) are skipped.

Split: ``fgg/pop909_split.json`` is a verbatim copy of the train/valid song ids (1-based)
used by the FGG authors' published code (818 train / 91 valid; 88 valid songs remain after
dropping triple meter), so metrics are comparable with the paper's tables.

Segments: 4 consecutive regular (4-beat) bars = 64 steps, starting at a downbeat. Training
uses every bar as a start (hop 1 bar); validation uses non-overlapping segments (greedy
from the start of each song). A segment holds the notes whose onset lies inside it, cut at
its end; pitches are octave-folded into MIDI 33-96.

Model inputs of one segment (``PianoRollDataset`` item; T = 64 steps, P = 64 pitches):
- ``accompaniment`` (2, T, P) float32 0/1: target roll, channels onset / sustain;
- ``melody`` (2, T, P) float32 0/1: melody condition;
- ``chord`` (2, T, P) float32: chord+rhythm condition (see ``fgg.condition``): chroma at
  the C3 and C4 octaves, ch0 = chroma x accompaniment onsets at that step, ch1 = chroma
  at steps with no onset;
- ``chord_null`` (2, T, P) float32: null-rhythm variant, -chroma-1 on both channels;
- ``chroma`` (T, 12) float32 and ``onset_counts`` (T,) float32: the raw condition;
- ``transpose`` () int64: semitones applied (augmentation -5..+6 on the fly, train only).
The null melody is -1 everywhere (``fgg.condition.null_melody_condition``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fgg.condition import chord_condition, null_rhythm_condition, onset_counts
from fgg.pianoroll import (
    BEATS_PER_BAR,
    SEGMENT_BARS,
    SEGMENT_STEPS,
    STEPS_PER_BEAT,
    fold_pitches,
    notes_to_roll,
    resolve_overlaps,
)
from fgg.pop909 import Song, read_song, song_files, triple_meter_songs

PIPELINE_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
SPLIT_FILE = Path(__file__).resolve().parent / "pop909_split.json"
DEFAULT_CACHE_DIR = REPO_ROOT / "data" / "cache"
VALID_SEGMENTS_FILE = REPO_ROOT / "assets" / "pop909_valid_segments.npz"
TRANSPOSE_RANGE = (-5, 6)  # inclusive, as in the paper's augmentation


def find_pop909_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$FGG_POP909_DIR``, else ``../shared/data/pop909`` beside the repo."""
    candidate = path or os.environ.get("FGG_POP909_DIR") or REPO_ROOT.parent / "shared" / "data" / "pop909"
    candidate = Path(candidate)
    if not (candidate / "index.csv").is_file():
        raise FileNotFoundError(
            f"POP909 not found at {candidate} (no index.csv). Get the POP909 folder from "
            "https://github.com/music-x-lab/POP909-Dataset and pass --pop909 DIR or set FGG_POP909_DIR."
        )
    return candidate


def load_split() -> dict[str, list[int]]:
    with open(SPLIT_FILE, encoding="utf-8") as f:
        split = json.load(f)
    return {"train": sorted(split["train"]), "valid": sorted(split["valid"])}


# ---------------------------------------------------------------------------- song collection

_PER_SONG = ("melody", "accompaniment")  # ragged note arrays
_PER_STEP = ("chroma", "root", "bass", "key_tonic", "key_minor")
_PER_BAR = ("bar_start", "bar_beats")


@dataclass
class SongCollection:
    """All songs' arrays concatenated (one flat array per field + offsets), so the cache
    is a single npz that loads in a fraction of a second and needs no pickle."""

    song_id: np.ndarray  # (S,)
    arrays: dict[str, np.ndarray]
    offsets: dict[str, np.ndarray]  # field -> (S+1,) offsets into arrays[field]

    def __len__(self) -> int:
        return len(self.song_id)

    def get(self, field: str, index: int) -> np.ndarray:
        off = self.offsets[field]
        return self.arrays[field][off[index] : off[index + 1]]

    @classmethod
    def from_songs(cls, songs: list[Song]) -> SongCollection:
        per_song_fields = _PER_SONG + _PER_STEP + _PER_BAR + ("step_times", "beat_labels")
        arrays, offsets = {}, {}
        for name in per_song_fields:
            parts = [getattr(s, name) for s in songs]
            offsets[name] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
            arrays[name] = np.concatenate(parts) if parts else np.zeros(0)
        return cls(np.array([s.song_id for s in songs], dtype=np.int32), arrays, offsets)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        payload = {"song_id": self.song_id}
        payload.update({f"a_{k}": v for k, v in self.arrays.items()})
        payload.update({f"o_{k}": v for k, v in self.offsets.items()})
        np.savez(tmp, **payload)  # type: ignore[arg-type]  # numpy's stub types the keyword arrays as a flag
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache

    @classmethod
    def load(cls, path: Path) -> SongCollection:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k[2:]: z[k] for k in z.files if k.startswith("a_")}
            offsets = {k[2:]: z[k] for k in z.files if k.startswith("o_")}
            return cls(z["song_id"], arrays, offsets)

    # -- segments

    def segment_starts(self, index: int, hop_bars: int = 1) -> np.ndarray:
        """Bar numbers (indices into this song's bars) where a 4-bar segment can start.

        A start needs ``SEGMENT_BARS`` consecutive 4-beat bars. ``hop_bars=1``: every such
        bar; otherwise greedy, the next start at least ``hop_bars`` bars after the previous.
        """
        regular = self.get("bar_beats", index) == BEATS_PER_BAR
        n = len(regular) - SEGMENT_BARS + 1
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        window = np.asarray(np.lib.stride_tricks.sliding_window_view(regular, SEGMENT_BARS).all(axis=1))
        candidates = np.flatnonzero(window[:n])
        if hop_bars <= 1:
            return candidates
        chosen, next_free = [], -1
        for bar in candidates:
            if bar >= next_free:
                chosen.append(int(bar))
                next_free = int(bar) + hop_bars
        return np.array(chosen, dtype=np.int64)

    def segment(self, index: int, bar: int, transpose: int = 0) -> dict[str, np.ndarray]:
        """Raw arrays of the 4-bar segment starting at bar ``bar`` of song ``index``,
        transposed by ``transpose`` semitones (notes and chords together)."""
        start = int(self.get("bar_start", index)[bar])
        end = start + SEGMENT_STEPS
        out: dict[str, Any] = {}
        for track in _PER_SONG:
            notes = self.get(track, index)
            lo, hi = np.searchsorted(notes[:, 0], [start, end])  # notes are sorted by onset
            seg = notes[lo:hi].astype(np.int64)
            seg[:, :2] -= start
            seg[:, 2], _ = fold_pitches(seg[:, 2] + transpose)
            # folding can stack two notes on one pitch: resolve so the roll stays canonical
            out[track] = notes_to_roll(resolve_overlaps(seg), SEGMENT_STEPS)  # (2, T, P)
        chroma = self.get("chroma", index)[start:end]
        out["chroma"] = np.roll(chroma, transpose, axis=-1)  # (T, 12)
        for name in ("root", "bass", "key_tonic"):
            values = self.get(name, index)[start:end].astype(np.int64)
            out[name] = np.where(values >= 0, (values + transpose) % 12, -1)
        out["key_minor"] = self.get("key_minor", index)[start:end]
        beat0 = start // STEPS_PER_BEAT
        out["chord_labels"] = self.get("beat_labels", index)[beat0 : beat0 + SEGMENT_STEPS // STEPS_PER_BEAT]
        beat_times = self.get("step_times", index)[start : end + 1 : STEPS_PER_BEAT]
        out["tempo"] = float(60.0 / np.mean(np.diff(beat_times)))
        out["onset_counts"] = onset_counts(out["accompaniment"])  # (T,)
        return out

    def folded_note_count(self) -> int:
        return sum(fold_pitches(self.arrays[t][:, 2])[1] for t in _PER_SONG)


# ---------------------------------------------------------------------------- cache


def _inputs_digest(pop909_dir: Path, song_ids: list[int]) -> str:
    """Hash of the pipeline version and the bytes of every input file."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"fgg-data-v{PIPELINE_VERSION}".encode())
    digest.update((pop909_dir / "index.csv").read_bytes())
    for song_id in song_ids:
        for path in song_files(str(pop909_dir), song_id):
            digest.update(path[len(str(pop909_dir)) :].encode())
            digest.update(Path(path).read_bytes() if os.path.exists(path) else b"<missing>")
    return digest.hexdigest()


def _read_song_or_reason(args: tuple[str, int]) -> Song | str:
    pop909_dir, song_id = args
    try:
        return read_song(pop909_dir, song_id)
    except (OSError, ValueError, KeyError, IndexError, EOFError) as err:  # a bad file skips one song
        return f"{type(err).__name__}: {err}"


@dataclass
class BuildReport:
    songs: int
    skipped: dict[int, str]
    cache_file: str
    cache_hit: bool
    seconds: float


def build_songs(
    pop909_dir=None, cache_dir=None, limit: int | None = None, workers: int | None = None
) -> tuple[SongCollection, BuildReport]:
    """Parse POP909 into a ``SongCollection``, or load it from the cache when the inputs
    and pipeline version are unchanged. ``limit``: only the first N song ids."""
    began = time.perf_counter()
    pop909_dir = find_pop909_dir(pop909_dir)
    cache_dir = Path(cache_dir or os.environ.get("FGG_CACHE_DIR") or DEFAULT_CACHE_DIR)
    triple = triple_meter_songs(str(pop909_dir))
    all_ids = sorted(int(p.name) for p in pop909_dir.iterdir() if p.is_dir() and p.name.isdigit())
    ids = all_ids[:limit] if limit else all_ids
    skipped = {i: "triple meter (index.csv)" for i in ids if i in triple}
    wanted = [i for i in ids if i not in triple]
    cache_file = cache_dir / f"pop909-{_inputs_digest(pop909_dir, wanted)}.npz"
    if cache_file.is_file():
        collection = SongCollection.load(cache_file)
        skipped.update({i: "unreadable (see first build)" for i in wanted if i not in set(collection.song_id)})
        return collection, BuildReport(len(collection), skipped, str(cache_file), True, time.perf_counter() - began)
    workers = workers or min(os.cpu_count() or 1, 8)
    jobs = [(str(pop909_dir), i) for i in wanted]
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_read_song_or_reason, jobs, chunksize=8))
    else:
        results = [_read_song_or_reason(job) for job in jobs]
    songs = []
    for song_id, result in zip(wanted, results, strict=True):
        if isinstance(result, str):
            skipped[song_id] = result
        else:
            songs.append(result)
    collection = SongCollection.from_songs(songs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    collection.save(cache_file)
    return collection, BuildReport(len(songs), skipped, str(cache_file), False, time.perf_counter() - began)


# ---------------------------------------------------------------------------- segments


def split_segments(collection: SongCollection, split: str) -> np.ndarray:
    """(N, 2) int64 rows of (song index, start bar): hop 1 bar for ``train``,
    non-overlapping for ``valid``."""
    ids = set(load_split()[split])
    hop = 1 if split == "train" else SEGMENT_BARS
    rows = [
        (i, bar)
        for i, song_id in enumerate(collection.song_id)
        if int(song_id) in ids
        for bar in collection.segment_starts(i, hop)
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def model_inputs(segment: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw segment arrays -> float32 model inputs (layout in the module docstring)."""
    chroma = segment["chroma"].astype(np.float32)
    counts = segment["onset_counts"].astype(np.float32)
    return {
        "accompaniment": segment["accompaniment"].astype(np.float32),
        "melody": segment["melody"].astype(np.float32),
        "chord": chord_condition(chroma, counts),
        "chord_null": null_rhythm_condition(chroma),
        "chroma": chroma,
        "onset_counts": counts,
    }


try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # the data pipeline itself does not need torch
    _TorchDataset = object  # type: ignore[misc,assignment]  # a plain base class when torch is absent


class PianoRollDataset(_TorchDataset):
    """Torch dataset of 4-bar segments of one split; ``augment`` draws a random
    transposition in -5..+6 per item (so 12 keys without 12 copies in memory)."""

    def __init__(self, collection: SongCollection, split: str, augment: bool | None = None, seed: int = 0):
        self.collection = collection
        self.index = split_segments(collection, split)
        self.augment = (split == "train") if augment is None else augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        transpose = int(self.rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1)) if self.augment else 0
        return self.item(i, transpose)

    def item(self, i: int, transpose: int = 0):
        """Item ``i`` at an explicit transposition (training draws it from its own seeded RNG
        so that ``--resume`` replays exactly the same batches)."""
        import torch  # here, not at the top: building and exporting the data needs no torch

        song, bar = self.index[i]
        item = {k: torch.from_numpy(v) for k, v in model_inputs(self.collection.segment(song, bar, transpose)).items()}
        item["transpose"] = torch.tensor(transpose)
        return item


# ---------------------------------------------------------------------------- export


def export_valid_segments(collection: SongCollection, path: Path = VALID_SEGMENTS_FILE) -> int:
    """Write the validation split's non-overlapping segments as a compressed, pickle-free
    npz (layout in assets/README.md); returns the number of segments."""
    rows = split_segments(collection, "valid")
    segs = [collection.segment(song, bar) for song, bar in rows]
    out = {
        "melody": np.stack([s["melody"] for s in segs]).astype(bool),  # (N, 2, 64, 64)
        "accompaniment": np.stack([s["accompaniment"] for s in segs]).astype(bool),  # (N, 2, 64, 64)
        "chroma": np.stack([s["chroma"] for s in segs]).astype(np.uint8),  # (N, 64, 12)
        "onset_counts": np.stack([s["onset_counts"] for s in segs]).astype(np.uint8),  # (N, 64)
        "root": np.stack([s["root"] for s in segs]).astype(np.int8),  # (N, 64)
        "bass": np.stack([s["bass"] for s in segs]).astype(np.int8),  # (N, 64)
        "key_tonic": np.stack([s["key_tonic"] for s in segs]).astype(np.int8),  # (N, 64)
        "key_minor": np.stack([s["key_minor"] for s in segs]).astype(bool),  # (N, 64)
        "chord_labels": np.stack([s["chord_labels"] for s in segs]).astype("<U24"),  # (N, 16)
        "song_id": collection.song_id[rows[:, 0]].astype(np.int16),  # (N,)
        "bar": rows[:, 1].astype(np.int16),  # (N,) 0-based bar index from the first downbeat
        "tempo": np.array([s["tempo"] for s in segs], dtype=np.float32),  # (N,)
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return len(segs)


def load_valid_segments(path: str | os.PathLike = VALID_SEGMENTS_FILE) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.data", description=__doc__.split("\n")[0])
    parser.add_argument("--pop909", help="POP909 folder (default $FGG_POP909_DIR or ../shared/data/pop909)")
    parser.add_argument("--limit", type=int, help="only the first N song ids")
    parser.add_argument("--out", help=f"cache folder (default {DEFAULT_CACHE_DIR.relative_to(REPO_ROOT)})")
    parser.add_argument(
        "--export",
        nargs="?",
        const=str(VALID_SEGMENTS_FILE),
        metavar="NPZ",
        help="also write the validation segments npz (default assets/pop909_valid_segments.npz)",
    )
    parser.add_argument("--workers", type=int, help="parallel processes (default: all cores)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        collection, report = build_songs(args.pop909, args.out, args.limit, args.workers)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {
        "songs": report.songs,
        "skipped": {str(k): v for k, v in sorted(report.skipped.items())},
        "train_segments": len(split_segments(collection, "train")),
        "valid_segments": len(split_segments(collection, "valid")),
        "notes_folded": collection.folded_note_count(),
        "cache_file": report.cache_file,
        "cache_hit": report.cache_hit,
    }
    if args.export:
        summary["exported_segments"] = export_valid_segments(collection, Path(args.export))
        summary["export_file"] = args.export
    summary["seconds"] = round(time.perf_counter() - began, 2)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
