"""Melody rhythms a person can choose by name: the 1- and 2-bar rhythms of POP909's training
melodies, ranked by how often they occur (``python -m fgg.melody_rhythms --build`` writes
``assets/melody_rhythms.json``; the file is committed), and what they are made of.

A rhythm is written one character per 16th step: ``x`` a note starts, ``-`` it goes on, ``.``
rest; a bar is 16 characters, e.g. ``x-x-x-x-x-------`` (four eighths, then a half note).
Its name says it in note values ("eighth · eighth · eighth · eighth · half"); its key (what
the API and the CLI take) is the same in letters: ``e-e-e-e-h`` (s sixteenth, e eighth, q
quarter, h half, w whole, a trailing ``.`` dotted, an ``r`` before a value a rest).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from fgg.checkpoint import REPO_ROOT
from fgg.data import build_songs, load_split
from fgg.melody_shape import HOLD, REST, START
from fgg.pianoroll import BEATS_PER_BAR, STEPS_PER_BAR, roll_to_notes

LIBRARY_FILE = REPO_ROOT / "assets" / "melody_rhythms.json"
SYMBOLS = {START: "x", HOLD: "-", REST: "."}
VALUES = {1: ("s", "sixteenth"), 2: ("e", "eighth"), 3: ("e.", "dotted eighth"), 4: ("q", "quarter"),
          6: ("q.", "dotted quarter"), 8: ("h", "half"), 12: ("h.", "dotted half"), 16: ("w", "whole")}  # fmt: skip
TOP_ONE_BAR, TOP_TWO_BARS = 16, 8
MIN_BARS = 100  # an accompaniment onset count with fewer training bars gets no median of its own
SPAN_BARS = 4  # the melody's register is measured 4 bars at a time, the model's window


@dataclass(frozen=True)
class MelodyRhythm:
    key: str  # "e-e-e-e-h": what the API and the CLI take
    pattern: str  # one character per 16th step, whole bars
    name: str  # in words
    share: float  # of the training bars (1-bar rhythms) or bar pairs (2-bar) with its note starts

    @property
    def symbols(self) -> np.ndarray:
        return parse_pattern(self.pattern)


def parse_pattern(pattern: str) -> np.ndarray:
    """``"x---x-.."`` -> (T,) int64 of ``START``/``HOLD``/``REST``; whole bars only."""
    codes = {char: symbol for symbol, char in SYMBOLS.items()}
    if not pattern or len(pattern) % STEPS_PER_BAR or set(pattern) - set(codes):
        raise ValueError(f"a melody rhythm is whole bars of {STEPS_PER_BAR} characters x - . (got {pattern[:40]!r})")
    return np.array([codes[char] for char in pattern], dtype=np.int64)


def parse_key(key: str) -> np.ndarray:
    """A rhythm's key (``describe``), in the library or not, e.g. "e-e-e-e-h" or "rq-q.-e-q",
    -> (T,) symbols; whole bars only."""
    lengths = {letter: length for length, (letter, _) in VALUES.items()}
    symbols: list[int] = []
    for k, token in enumerate(key.strip().split("-")):
        kind, value = (token[0], token[1:]) if token[:1] in ("r", "t") else ("", token)
        if value.endswith("s") and value[:-1].isdigit() and 0 < int(value[:-1]) <= 64:
            length = int(value[:-1])
        elif value in lengths:
            length = lengths[value]
        else:
            raise ValueError(
                f"{token!r} in melody rhythm {key[:40]!r} is no note value (s e q h w, dotted with ., r rest)"
            )
        if kind == "t" and k > 0:
            raise ValueError(f"only a rhythm's first note can be tied (t), in {key[:40]!r}")
        first = HOLD if kind == "t" else REST if kind == "r" else START
        symbols += [first] + [REST if kind == "r" else HOLD] * (length - 1)
    return parse_pattern(pattern_text(np.array(symbols)))


def pattern_text(symbols: np.ndarray) -> str:
    return "".join(SYMBOLS[int(s)] for s in symbols)


def durations(symbols: np.ndarray) -> list[tuple[bool, int]]:
    """(is a note, length in 16ths) for each note and each rest, in order; a hold after a rest
    counts as rest."""
    out: list[tuple[bool, int]] = []
    for symbol in symbols:
        note = symbol == START or (symbol == HOLD and bool(out) and out[-1][0])
        if symbol == START or not out or out[-1][0] != note:
            out.append((note, 1))
        else:
            out[-1] = (note, out[-1][1] + 1)
    return out


def describe(symbols: np.ndarray) -> tuple[str, str]:
    """(key, name) of a rhythm, e.g. ("e-e-e-e-h", "eighth · eighth · eighth · eighth · half").
    A rhythm that opens holding goes on with the note before it (tiled, the last note of its
    previous bar): "t" for tied."""
    keys, names = [], []
    for k, (note, length) in enumerate(durations(symbols)):
        letter, word = VALUES.get(length, (f"{length}s", f"{length} sixteenths"))
        tied = k == 0 and symbols[0] == HOLD
        keys.append(f"t{letter}" if tied else letter if note else f"r{letter}")
        names.append(f"tied {word}" if tied else word if note else f"{word} rest")
    return "-".join(keys), " · ".join(names)


def melody_symbols(notes: np.ndarray, n_steps: int) -> np.ndarray:
    """(T,) the rhythm of the top line of melody notes (N, 3) [start, end, pitch]: a note
    sounds from its start until its end or the next note's start, whichever comes first."""
    symbols = np.full(n_steps, REST, dtype=np.int64)
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < n_steps)]
    starts = np.sort(notes[:, 0])
    for start, end, _ in notes:
        following = np.searchsorted(starts, start, side="right")
        cut = starts[following] if following < len(starts) else n_steps
        symbols[start + 1 : min(end, cut, n_steps)] = HOLD
    symbols[starts] = START
    return symbols


def count_bar_rhythms(collection, song_ids: set[int]) -> tuple[Counter[str], Counter[str], int, int]:
    """1-bar and 2-bar rhythm counts over the 4/4 bars of the given songs' melodies (empty bars
    left out), and how many bars and bar pairs were counted."""
    one: Counter[str] = Counter()
    two: Counter[str] = Counter()
    bars_counted = pairs_counted = 0
    for index, song_id in enumerate(collection.song_id):
        if int(song_id) not in song_ids:
            continue
        starts, beats = collection.get("bar_start", index), collection.get("bar_beats", index)
        n_steps = int(starts[-1]) + STEPS_PER_BAR if len(starts) else 0
        symbols = melody_symbols(collection.get("melody", index), n_steps)
        bars = [
            pattern_text(symbols[s : s + STEPS_PER_BAR]) if b == BEATS_PER_BAR else None
            for s, b in zip(starts, beats, strict=True)
        ]
        for bar, following in zip(bars, bars[1:] + [None], strict=True):
            if bar is not None and "x" in bar:
                one[bar] += 1
                bars_counted += 1
                if following is not None and "x" in following:
                    two[bar + following] += 1
                    pairs_counted += 1
    return one, two, bars_counted, pairs_counted


def starts_by_accompaniment(collection, song_ids: set[int]) -> tuple[float, dict[int, float]]:
    """How busy POP909's training melodies are over accompaniments this busy: the median melody
    note starts per 4/4 bar (bars with a melody note), over all bars and by the accompaniment's
    onset steps in the bar (steps where an accompaniment note starts, 0-16; a count with fewer
    than ``MIN_BARS`` bars is left out)."""
    everything: list[int] = []
    by_onsets: dict[int, list[int]] = {}
    for index, song_id in enumerate(collection.song_id):
        if int(song_id) not in song_ids:
            continue
        starts, beats = collection.get("bar_start", index), collection.get("bar_beats", index)
        melody_starts = np.asarray(collection.get("melody", index), dtype=np.int64).reshape(-1, 3)[:, 0]
        backing_starts = np.unique(np.asarray(collection.get("accompaniment", index), dtype=np.int64)[:, 0])
        for start, bar_beats in zip(starts, beats, strict=True):
            if bar_beats != BEATS_PER_BAR:
                continue
            tune = len(np.unique(melody_starts[(melody_starts >= start) & (melody_starts < start + STEPS_PER_BAR)]))
            if tune:
                onsets = int(((backing_starts >= start) & (backing_starts < start + STEPS_PER_BAR)).sum())
                everything.append(tune)
                by_onsets.setdefault(onsets, []).append(tune)
    medians = {d: float(np.median(v)) for d, v in sorted(by_onsets.items()) if len(v) >= MIN_BARS}
    return float(np.median(everything)), medians


def four_bar_spans(collection, song_ids: set[int]) -> dict[str, float]:
    """Where POP909's training melodies sit, 4 bars at a time (consecutive 4-bar windows from
    each song's first bar, those with at least 4 melody notes): the median of the midpoints
    (highest + lowest pitch) / 2 and of the ranges (highest − lowest), in MIDI / semitones."""
    midpoints, ranges = [], []
    for index, song_id in enumerate(collection.song_id):
        if int(song_id) not in song_ids:
            continue
        notes, starts = np.asarray(collection.get("melody", index)).reshape(-1, 3), collection.get("bar_start", index)
        for first in range(0, len(starts) - SPAN_BARS, SPAN_BARS):
            pitches = notes[(notes[:, 0] >= starts[first]) & (notes[:, 0] < starts[first + SPAN_BARS]), 2]
            if len(pitches) >= SPAN_BARS:
                midpoints.append((int(pitches.max()) + int(pitches.min())) / 2)
                ranges.append(int(pitches.max()) - int(pitches.min()))
    return {"midpoint_median": float(np.median(midpoints)), "range_median": float(np.median(ranges))}


def breathe(symbols: np.ndarray) -> np.ndarray:
    """A phrase that breathes: its last step a rest if a note was holding there (a tiled
    phrase otherwise never rests, as POP909's legato note ends make the library's phrases)."""
    symbols = np.array(symbols, copy=True)
    if symbols[-1] == HOLD:
        symbols[-1] = REST
    return symbols


def build_library(collection, song_ids: set[int]) -> dict:
    """The most frequent rhythms, counted by where their notes start (note ends in POP909 are
    played, so nearly every bar's ends differ), each written as its most frequent form."""
    one, two, bars, pairs = count_bar_rhythms(collection, song_ids)
    rhythms = []
    for counts, top, total in ((one, TOP_ONE_BAR, bars), (two, TOP_TWO_BARS, pairs)):
        by_starts: dict[str, Counter[str]] = {}
        for pattern, count in counts.items():
            by_starts.setdefault(pattern.replace("-", "."), Counter())[pattern] = count
        ranked = sorted(by_starts.values(), key=lambda forms: -sum(forms.values()))[:top]
        for forms in ranked:
            pattern = forms.most_common(1)[0][0]
            key, name = describe(parse_pattern(pattern))
            rhythms.append(
                {"key": key, "name": name, "pattern": pattern, "share": round(sum(forms.values()) / total, 4)}
            )
    pitches = np.concatenate(
        [collection.get("melody", i)[:, 2] for i, song_id in enumerate(collection.song_id) if int(song_id) in song_ids]
    )
    percentiles = np.percentile(pitches, [2.5, 50, 97.5]).round().astype(int).tolist()
    register = dict(zip(("p2.5", "p50", "p97.5"), percentiles, strict=True))
    overall, by_onsets = starts_by_accompaniment(collection, song_ids)
    busy = {"all": overall, "by_accompaniment_onset_steps": {str(d): m for d, m in by_onsets.items()}}
    return {"source": "POP909 training songs (fgg/pop909_split.json), 4/4 bars with a melody note",
            "bars": bars, "bar_pairs": pairs, "melody_pitch_midi": register,
            "melody_four_bars": four_bar_spans(collection, song_ids), "melody_starts_per_bar": busy,
            "rhythms": rhythms}  # fmt: skip


@cache
def _committed(path: Path = LIBRARY_FILE) -> dict:
    """The committed library file (``build_library``'s document), read once."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@cache
def library(path: Path = LIBRARY_FILE) -> dict[str, MelodyRhythm]:
    """The committed rhythms by key, most frequent first (1-bar, then 2-bar)."""
    rhythms = _committed(path)["rhythms"]
    return {r["key"]: MelodyRhythm(r["key"], r["pattern"], r["name"], r["share"]) for r in rhythms}


@cache
def _starts_per_bar(path: Path = LIBRARY_FILE) -> tuple[float, dict[int, float]]:
    busy = _committed(path)["melody_starts_per_bar"]
    return busy["all"], {int(d): m for d, m in busy["by_accompaniment_onset_steps"].items()}


def suited_rhythm(counts: np.ndarray | None) -> tuple[MelodyRhythm, float]:
    """The library's two-bar rhythm for an accompaniment rhythm ``counts`` ((T,) onsets per
    16th step; None: the model chooses it), and the melody note starts per bar it aims at:
    POP909's median over accompaniments with as many onset steps per bar (the nearest count
    measured; over all of them without ``counts``). The two-bar rhythm whose starts per bar are
    nearest wins, the more common one on a tie (in POP909 a busier accompaniment goes with a
    busier melody: a median of 3 starts a bar over none, 5 over 4-9 onset steps, 7 over 13-16)."""
    overall, by_onsets = _starts_per_bar()
    target = overall
    if counts is not None:
        bars = np.asarray(counts).reshape(-1, STEPS_PER_BAR)
        onsets = int(round(float((bars > 0).sum(axis=1).mean())))
        target = by_onsets[min(by_onsets, key=lambda d: (abs(d - onsets), d))]
    phrases = [r for r in library().values() if len(r.pattern) == 2 * STEPS_PER_BAR]
    starts = {r.key: r.pattern.count("x") / 2 for r in phrases}
    return min(phrases, key=lambda r: (abs(starts[r.key] - target), -r.share)), target


def auto_rhythm(counts: np.ndarray | None, n_steps: int) -> np.ndarray:
    """(n_steps,) the "auto" melody rhythm: ``suited_rhythm`` of the accompaniment's ``counts``,
    breathing at the end of each phrase (``breathe``), tiled."""
    return np.resize(breathe(suited_rhythm(counts)[0].symbols), n_steps)


def roll_rhythm(roll: np.ndarray) -> np.ndarray:
    """(T,) the rhythm of a melody roll (2, T, P): ``melody_symbols`` of its notes."""
    return melody_symbols(roll_to_notes(roll), roll.shape[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgg.melody_rhythms", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--build", action="store_true", help=f"count POP909's training melodies, write {LIBRARY_FILE.name}"
    )
    parser.add_argument("--pop909", help="POP909 folder (default $FGG_POP909_DIR or ../shared/data/pop909)")
    args = parser.parse_args(argv)
    if args.build:
        collection, _ = build_songs(args.pop909)
        built = build_library(collection, set(load_split()["train"]))
        LIBRARY_FILE.write_text(json.dumps(built, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for rhythm in library(LIBRARY_FILE).values():
        print(f"{rhythm.key:<22} {rhythm.pattern}  {rhythm.share:6.2%}  {rhythm.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
