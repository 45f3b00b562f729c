"""The Generate tab's "More options" group: FGG strength, CFG, rhythms, the scale, the sampler,
humanize, pedal and seed (the components of their /generate parameters, by name)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from demo.controller import Controller
from demo.guard import Checkbox, Dropdown, Number, Radio, Slider
from demo.limits import PUBLIC_LIMITS
from demo.request import (
    DEFAULT_SAMPLER,
    MELODY_RHYTHM_CHOICES,
    NO_SEGMENT,
    RHYTHM_CHOICES,
    SAMPLERS,
    SCALE_CHOICES,
)
from fgg.chords import PITCH_NAMES
from fgg.diffusion import SOLVERS
from fgg.melody_rhythms import library as melody_rhythm_library

CFG_HELP = {
    True: "how strongly the melody and rhythm steer the music (1 = the model ignores them)",
    False: "no effect with chords alone: chords are never dropped, so both of CFG's predictions are the "
    "same. Add a melody, a segment or a rhythm to use it.",
}


def guidance_inputs(controller: Controller) -> dict[str, Any]:
    return {
        "strength": Slider(
            0,
            1,
            value=1.0,
            step=0.05,
            label="FGG strength",
            info="share of the out-of-key pitch classes forbidden, harshest first (1 = all)",
        ),
        "cfg_scale": Slider(
            *PUBLIC_LIMITS.cfg_scale,
            value=7.5,
            step=0.5,
            label="CFG scale",
            elem_id="cfg",
            interactive=False,
            info=CFG_HELP[False],
        ),
        "rhythm": Dropdown(
            RHYTHM_CHOICES,
            value="none",
            label="Rhythm",
            elem_id="rhythm",
            info="onsets per 16th the accompaniment must play; none = the model decides",
        ),
        "force_rhythm": Checkbox(
            value=True,
            label="Force the rhythm",
            elem_id="force-rhythm",
            info="with FGG: exactly the rhythm's onsets at every step (off: the rhythm only conditions the model)",
        ),
        "melody_rhythm": Dropdown(
            melody_rhythm_choices(),
            value="auto",
            label="Melody rhythm",
            elem_id="melody-rhythm",
            interactive=controller.generator().mode.writes_melody,
            info="models that write the melody: when its notes start and how long they last",
        ),
        "melody_rhythm_note": gr.Markdown(
            controller.melody_rhythm_text("auto", "none", NO_SEGMENT, None), elem_id="melody-rhythm-note"
        ),
    }


MELODY_RHYTHM_HELP = {
    "auto": "suits the accompaniment's rhythm",
    "free": "the model's own, a note every bar",
    "from segment": "the POP909 segment's melody",
    "off": "no constraints",
}


def melody_rhythm_choices() -> list[tuple[str, str]]:
    """(label, value) of every melody rhythm: the four ways, then the library's by name."""
    library = melody_rhythm_library()
    return [
        (f"{value} — {MELODY_RHYTHM_HELP[value]}" if value in MELODY_RHYTHM_HELP else library[value].name, value)
        for value in MELODY_RHYTHM_CHOICES
    ]


def scale_inputs() -> dict[str, Any]:
    with gr.Row():
        scale = Dropdown(
            SCALE_CHOICES,
            value="from chords",
            label="Scale",
            min_width=180,  # wide enough to read its choice; on a phone Tonic goes below
            info="allowed notes: from each chord, or a scale",
        )
        tonic = Dropdown(PITCH_NAMES, value="C", label="Tonic", min_width=100, info="of a named scale")
    custom_scale = gr.Textbox(
        label="Custom scale notes",
        placeholder="C D E G A",
        max_length=100,
        info="with Scale = custom: the allowed note names",
    )
    with gr.Row():
        scale_table = Dropdown(
            [("ours (root-aware)", "ours"), ("paper's table", "paper")],
            value="ours",
            label="Chord → scale table",
            min_width=180,
            info="how a chord becomes allowed notes (Scale = from chords)",
        )
        scale_mode = Dropdown(
            [("scale + each chord's tones", "with_chords"), ("scale only (strict)", "strict")],
            value="with_chords",
            label="User scale",
            min_width=180,
            info="a named/custom scale also allows the chord's own notes, or not",
        )
    return {
        "scale": scale,
        "tonic": tonic,
        "custom_scale": custom_scale,
        "scale_table": scale_table,
        "scale_mode": scale_mode,
    }


def sampling_inputs() -> dict[str, Any]:
    solver = Radio(
        [(sampler_label(name), solver) for name, (solver, _) in SAMPLERS.items()],
        value=SAMPLERS[DEFAULT_SAMPLER][0],
        label="Sampler",
        elem_id="solver",
        info="fast: fewer steps at the same chord fit (measured); paper: the paper's sampler",
    )
    steps = Slider(
        *PUBLIC_LIMITS.steps,
        value=SAMPLERS[DEFAULT_SAMPLER][1],
        step=1,
        label="Sampling steps",
        elem_id="steps",
        info="set by the sampler; more is slower, rarely better",
    )
    with gr.Row():
        humanize = Checkbox(
            value=False,
            label="Humanize",
            elem_id="humanize",
            min_width=140,
            info="small timing and loudness variations, from the seed",
        )
        pedal = Checkbox(
            value=False,
            label="Sustain pedal",
            elem_id="pedal",
            min_width=140,
            info="on the accompaniment, re-pedalled at each chord change",
        )
    with gr.Row():
        seed = Number(
            value=0,
            precision=0,
            label="Seed",
            minimum=PUBLIC_LIMITS.seed[0],
            maximum=PUBLIC_LIMITS.seed[1],
            min_width=120,
            info="same seed + same settings = same music",
        )
        dice = gr.Button("🎲 random", size="sm", min_width=80)
    return {"solver": solver, "steps": steps, "humanize": humanize, "pedal": pedal, "seed": seed, "dice": dice}


def sampler_label(name: str) -> str:
    """e.g. "fast — DPM-Solver++(2M), 4 steps"."""
    solver, steps = SAMPLERS[name]
    return f"{name} — {SOLVERS[solver].label}, {steps} steps"
