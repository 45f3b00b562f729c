"""Chord symbols: Harte labels (POP909's ``chord_midi.txt``) and lead-sheet symbols typed by
users, turned into per-step chroma for the model.

Every symbol is first normalised to a Harte label (``C:maj7``, ``G:7/3``, ``N``) and then
encoded by ``mir_eval.chord.encode``, so POP909 labels and user input share one parser.

Encodings (all per 16th-note step):
- ``chroma`` (T, 12) uint8: absolute pitch classes of the chord (C = 0), bass included;
  all zero for ``N`` (no chord).
- ``root`` (T,) int8: root pitch class, -1 for ``N``.
- ``bass`` (T,) int8: absolute bass pitch class, -1 for ``N``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import mir_eval
import numpy as np

from fgg.pianoroll import BEATS_PER_BAR, STEPS_PER_BEAT

NO_CHORD = "N"
PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_DEGREE_OF_SEMITONE = ["1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7"]

# Lead-sheet quality suffix -> Harte quality (with Harte extra degrees where needed).
LEAD_SHEET_QUALITIES = {
    "": "maj",
    "maj": "maj",
    "M": "maj",
    "Δ": "maj7",
    "m": "min",
    "min": "min",
    "-": "min",
    "7": "7",
    "dom7": "7",
    "maj7": "maj7",
    "M7": "maj7",
    "ma7": "maj7",
    "Δ7": "maj7",
    "m7": "min7",
    "min7": "min7",
    "-7": "min7",
    "mM7": "minmaj7",
    "mmaj7": "minmaj7",
    "minmaj7": "minmaj7",
    "m(maj7)": "minmaj7",
    "m7b5": "hdim7",
    "ø": "hdim7",
    "ø7": "hdim7",
    "min7b5": "hdim7",
    "dim": "dim",
    "°": "dim",
    "o": "dim",
    "dim7": "dim7",
    "°7": "dim7",
    "o7": "dim7",
    "aug": "aug",
    "+": "aug",
    "sus4": "sus4",
    "sus": "sus4",
    "sus2": "sus2",
    "7sus4": "sus4(b7)",
    "7sus": "sus4(b7)",
    "6": "maj6",
    "m6": "min6",
    "9": "9",
    "maj9": "maj9",
    "M9": "maj9",
    "m9": "min9",
    "add9": "maj(9)",
    "madd9": "min(9)",
    "add2": "maj(2)",
    "11": "11",
    "m11": "min11",
    "13": "13",
    "maj13": "maj13",
    "m13": "min13",
    "7b9": "7(b9)",
    "7#9": "7(#9)",
    "7#11": "7(#11)",
    "7b5": "7(b5)",
    "7#5": "aug(b7)",
    "5": "5",
}
_LEAD_SHEET = re.compile(r"^([A-Ga-g])([#b♯♭]*)(.*?)(?:/([A-Ga-g][#b♯♭]*))?$")
_NO_CHORD_TOKENS = {"N", "N.C.", "NC", "N.C", "n.c.", "nc"}


def pitch_class(name: str) -> int:
    """Pitch class (0-11) of a note name such as ``C``, ``F#``, ``Bb``, ``Cbb``."""
    letter, accidentals = name[0].upper(), name[1:].replace("♯", "#").replace("♭", "b")
    if letter not in "ABCDEFG" or set(accidentals) - {"#", "b"}:
        raise ValueError(f"not a note name: {name!r}")
    return ("C D EF G A B".index(letter) + accidentals.count("#") - accidentals.count("b")) % 12


def to_harte(symbol: str) -> str:
    """Normalise a Harte label or lead-sheet symbol to a Harte label; ``ValueError`` if unknown."""
    token = symbol.strip()
    if token in _NO_CHORD_TOKENS:
        return NO_CHORD
    if ":" in token or token == "X":
        label = token
    else:
        match = _LEAD_SHEET.match(token)
        if match is None:
            raise ValueError(f"unrecognised chord symbol {symbol!r}")
        letter, accidentals, suffix, bass = match.groups()
        if suffix not in LEAD_SHEET_QUALITIES:
            raise ValueError(f"unknown chord quality {suffix!r} in {symbol!r}")
        root = letter.upper() + accidentals.replace("♯", "#").replace("♭", "b")
        label = f"{root}:{LEAD_SHEET_QUALITIES[suffix]}"
        if bass:
            label += "/" + _DEGREE_OF_SEMITONE[(pitch_class(bass) - pitch_class(root)) % 12]
    encode_label(label)  # validates
    return label


@functools.lru_cache(maxsize=4096)
def _encode(label: str) -> tuple[int, tuple[int, ...], int]:
    try:
        root, bitmap, bass = mir_eval.chord.encode(label)
    except (mir_eval.chord.InvalidChordException, ValueError, IndexError, KeyError) as err:
        raise ValueError(f"invalid chord label {label!r}: {err}") from None
    if root < 0:
        return -1, (0,) * 12, -1
    chroma = np.roll(np.asarray(bitmap, dtype=np.uint8), root)
    return int(root), tuple(int(v) for v in chroma), int((root + bass) % 12)


def encode_label(label: str) -> tuple[int, np.ndarray, int]:
    """Harte label -> (root pc or -1, absolute chroma (12,) uint8, absolute bass pc or -1).

    ``X`` (unknown) is treated like ``N``. Raises ``ValueError`` on a malformed label.
    """
    root, chroma, bass = _encode("N" if label == "X" else label)
    return root, np.array(chroma, dtype=np.uint8), bass


def chord_name(label: str) -> str:
    """Short display name for a Harte label: ``C:min7`` -> ``Cm7``, ``N`` -> ``N.C.``."""
    if label in (NO_CHORD, "X"):
        return "N.C."
    root, _, rest = label.partition(":")
    quality, _, bass = (rest or "maj").partition("/")
    inverse = {v: k for k, v in reversed(list(LEAD_SHEET_QUALITIES.items()))}
    name = root + inverse.get(quality, ":" + quality)
    if bass:
        semis = _DEGREE_OF_SEMITONE.index(bass) if bass in _DEGREE_OF_SEMITONE else None
        name += "/" + (PITCH_NAMES[(pitch_class(root) + semis) % 12] if semis is not None else bass)
    return name


@dataclass(frozen=True)
class Progression:
    """A parsed chord progression on the 16th-note grid (4/4, 16 steps per bar)."""

    labels: tuple[str, ...]  # one Harte label per beat
    chroma: np.ndarray  # (T, 12) uint8
    root: np.ndarray  # (T,) int8
    bass: np.ndarray  # (T,) int8

    @property
    def n_bars(self) -> int:
        return len(self.labels) // BEATS_PER_BAR

    @property
    def n_steps(self) -> int:
        return self.chroma.shape[0]


def beats_for_chords(n_chords: int) -> list[int]:
    """Beats given to each of ``n_chords`` chords in a 4-beat bar: even split, any remainder
    to the earliest chords (1 -> [4], 2 -> [2, 2], 3 -> [2, 1, 1], 4 -> [1, 1, 1, 1])."""
    base, extra = divmod(BEATS_PER_BAR, n_chords)
    return [base + (1 if i < extra else 0) for i in range(n_chords)]


def progression_from_labels(beat_labels) -> Progression:
    """Build a ``Progression`` from one Harte label per beat."""
    labels = tuple(beat_labels)
    if len(labels) == 0 or len(labels) % BEATS_PER_BAR:
        raise ValueError(f"need a whole number of 4-beat bars, got {len(labels)} beats")
    encoded = [encode_label(lab) for lab in labels]
    chroma = np.repeat(np.stack([c for _, c, _ in encoded]), STEPS_PER_BEAT, axis=0)
    root = np.repeat(np.array([r for r, _, _ in encoded], dtype=np.int8), STEPS_PER_BEAT)
    bass = np.repeat(np.array([b for _, _, b in encoded], dtype=np.int8), STEPS_PER_BEAT)
    return Progression(labels, chroma, root, bass)


def read_bars(text: str) -> list[list[str]]:
    """The bars of a progression's text, as tokens: bars are separated by ``|``; without any
    ``|``, each chord is a bar ("Am F C G" is four bars: most people who type four chords mean
    one per bar). Raises ``ValueError`` for an empty text."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty chord progression: enter chords such as 'C G | Am F'")
    if "|" not in text:
        return [[token] for token in text.split()]
    return [bar.split() for bar in text.strip().strip("|").split("|")]


def describe_reading(text: str) -> str:
    """How ``text`` is read, bar by bar, e.g. "4 bars: Am | F | C | G"."""
    bars = read_bars(text)
    return f"{len(bars)} bar{'s' if len(bars) != 1 else ''}: " + " | ".join(" ".join(bar) for bar in bars)


def parse_progression(text: str) -> Progression:
    """Parse a progression such as ``"C G | Am F"``, ``"Am F C G"`` (no ``|``: one chord per
    bar) or ``"C:maj | A:min7 D:7 | G7/B | N.C."``.

    Bars are read by ``read_bars``; a bar holds 1-4 chords separated by spaces, split over the
    bar's four beats by ``beats_for_chords``. ``%`` repeats the previous bar. Chords are Harte
    labels or lead-sheet symbols (see ``LEAD_SHEET_QUALITIES``). Raises ``ValueError`` naming
    the offending token and its (1-based) bar.
    """
    bars = read_bars(text)
    labels: list[str] = []
    for number, tokens in enumerate(bars, start=1):
        if not tokens:
            raise ValueError(f"bar {number} is empty (two '|' in a row?)")
        if tokens == ["%"]:
            if number == 1:
                raise ValueError("bar 1: '%' repeats the previous bar, but there is none")
            labels.extend(labels[-BEATS_PER_BAR:])
            continue
        if len(tokens) > BEATS_PER_BAR:
            raise ValueError(
                f"bar {number} has {len(tokens)} chords; at most {BEATS_PER_BAR} (one per beat) fit in a 4/4 bar"
            )
        for token, beats in zip(tokens, beats_for_chords(len(tokens)), strict=True):
            try:
                labels.extend([to_harte(token)] * beats)
            except ValueError as err:
                raise ValueError(f"bar {number}: {err}") from None
    return progression_from_labels(labels)
