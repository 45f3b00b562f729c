"""Style presets for the melody+accompaniment mode: a progression and a user scale that POP909
(almost all major/minor pop) rarely uses, so what comes out shows FGG steering the model into
a mode — the paper's style demos. ``characteristic`` names the pitch classes that make the
mode audible (the Dorian major 6th over a minor tonic, …): the style check (``eval.style_check``)
counts how often the music *uses* them, not only that it avoids the notes outside the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgg.chords import pitch_class


@dataclass(frozen=True)
class Style:
    name: str
    chords: str
    scale: str  # "TONIC NAME", as generate(scale=…) takes it
    characteristic: tuple[str, ...]  # note names
    why: str  # one sentence for the app

    @property
    def characteristic_pitch_classes(self) -> tuple[int, ...]:
        return tuple(pitch_class(n) for n in self.characteristic)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "D Dorian",
            "Dm7 | G7 | Dm7 | G7",
            "D dorian",
            ("B",),
            "A minor mode with a major sixth (B♮ over D minor): the colour of 'So What' and 'Scarborough Fair'.",
        ),
        Style(
            "Chinese pentatonic (宫 on C)",
            "C | Am | F | G",
            "C pentatonic",
            ("E", "A"),
            "Five notes, no semitones: without F and B the music sounds like the 宫 (gong) mode of Chinese music.",
        ),
        Style(
            "C blues",
            "C7 | F7 | C7 | G7",
            "C blues",
            ("Eb", "F#"),
            "The minor third and the 'blue' flat fifth over major-sounding chords.",
        ),
    )
}
