"""The app's requests, as sent: one frozen dataclass whose fields, in order and with their
defaults, are the /generate API's parameters (``CompareRequest`` adds /compare's two systems).

Nothing here is checked: ``demo.controller.Controller.resolve`` checks every field (an
``InputError`` names the API parameter) and resolves the request into a
``fgg.inputs.GenerationSpec``. Handlers build requests by name (``AppRequest(**values)``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields

from fgg.inputs import RHYTHM_PATTERNS
from fgg.melody_rhythms import library as melody_rhythm_library

NO_SEGMENT = -1
RHYTHM_CHOICES = ["none", "from segment"] + list(RHYTHM_PATTERNS)
# A written melody's rhythm (models that write the melody): "auto" suits the accompaniment's
# rhythm, "from segment" takes the segment's melody's, then every rhythm of the library by key.
MELODY_RHYTHM_CHOICES = ["auto", "free", "from segment", "off"] + list(melody_rhythm_library())
# The Generate tab's samplers, (solver, steps) (fgg.diffusion.SOLVERS): "paper" is the paper's
# 10 DDIM steps; "fast" DPM-Solver++(2M) in the fewest steps whose chord metrics stay within the
# CIs of the paper's on 400 validation segments (assets/eval/steps_curve.csv, README "Fewer steps").
SAMPLERS = {"fast": ("dpmpp_2m", 4), "paper": ("ddim", 10)}
DEFAULT_SAMPLER = "fast"
SCALE_CHOICES = ["from chords", "major", "minor", "dorian", "mixolydian", "pentatonic", "blues", "custom"]


@dataclass(frozen=True)
class AppRequest:
    """One /generate request. The types are what a well-behaved client sends; the values are as
    sent (a public API gets anything) until ``Controller.resolve`` has checked them."""

    chords: str  # progression text, e.g. "C G | Am F"; empty with a segment: the segment's chords
    segment: int = NO_SEGMENT  # a POP909 validation segment's index (its chords, melody, rhythm), or -1
    melody_file: str | None = None  # an uploaded melody MIDI (a path), replacing the segment's melody
    bars: int | None = None  # None: follow the progression
    tempo: float = 90  # BPM
    fgg: bool = True
    strength: float = 1.0
    cfg_scale: float = 7.5
    rhythm: str = "none"  # one of RHYTHM_CHOICES
    scale: str = "from chords"  # one of SCALE_CHOICES
    tonic: str = "C"  # of a named scale
    custom_scale: str | None = None  # note names, with scale = "custom"
    steps: int = SAMPLERS[DEFAULT_SAMPLER][1]
    seed: int = 0
    model: str | None = None  # a served model's name; None: the default
    scale_table: str = "ours"
    scale_mode: str = "with_chords"
    humanize: bool = False
    pedal: bool = False
    force_rhythm: bool = True  # with FGG and a rhythm: the onset counts enforced at every step
    melody_rhythm: str = "auto"  # one of MELODY_RHYTHM_CHOICES (models that write the melody)
    solver: str = SAMPLERS[DEFAULT_SAMPLER][0]  # fgg.diffusion.SOLVERS


@dataclass(frozen=True)
class CompareRequest(AppRequest):
    """One /compare request: the Generate tab's request and the two systems to compare."""

    system_a: str = "fgg"
    system_b: str = "no_fgg"


def api_parameters(cls: type[AppRequest], default_model: str) -> list[inspect.Parameter]:
    """The API parameters of an endpoint taking ``cls``: its fields, in order, with their
    defaults (the served default model named)."""
    return [
        p.replace(default=default_model) if p.name == "model" else p for p in inspect.signature(cls).parameters.values()
    ]


GENERATE_PARAMETERS = tuple(f.name for f in fields(AppRequest))
COMPARE_PARAMETERS = tuple(f.name for f in fields(CompareRequest))
