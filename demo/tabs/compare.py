"""The Compare tab: two systems on the Generate tab's request, cut to its first 4 bars, same
seed, side by side with what changed and their metrics (the /compare API)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from demo.controller import Controller
from demo.guard import Dropdown, api_handler, serve_admitted, validator
from demo.limits import Admission
from demo.request import COMPARE_PARAMETERS, CompareRequest, api_parameters
from demo.tabs.generate import GenerateTab, done_message
from fgg.modes import ACCOMPANIMENT

SYSTEM_HELP = {  # one line per system of the accompaniment mode (Compare runs accompaniment models)
    "fgg": "the full method: FGG at every sampling step",
    "no_fgg": "the same model and noise, no guidance",
    "last_step_remove": "unguided, then out-of-key notes deleted at the end",
    "last_step_round": "unguided, then out-of-key notes moved to the nearest allowed pitch",
    "inpaint": "out-of-key pixels held empty at every step (inpainting)",
    "null_rhythm": "FGG without the rhythm condition",
    "rule_based": "chord tones on the rhythm, no model (the floor)",
    "ground_truth": "the human POP909 accompaniment (needs a segment)",
}


def system_choices() -> list[tuple[str, str]]:
    """(label, name) of every system of the accompaniment mode, its one-line help in the label."""
    return [(f"{s} — {SYSTEM_HELP[s]}", s) for s in ACCOMPANIMENT.systems]


@dataclass(frozen=True)
class CompareTab:
    """The tab's components; the two systems carry their API parameters' names."""

    system_a: gr.Dropdown
    system_b: gr.Dropdown
    compare: gr.Button
    status: gr.Markdown
    audio_a: gr.Audio
    midi_a: gr.File
    plot_a: gr.Plot
    audio_b: gr.Audio
    midi_b: gr.File
    plot_b: gr.Plot
    diff: gr.Plot
    table: gr.DataFrame


def build_compare_tab() -> CompareTab:
    """The tab, laid out (inside the current ``gr.Blocks``)."""
    with gr.Tab("Compare"):
        gr.Markdown(
            "Two systems on **the Generate tab's settings** (chords, segment, melody, rhythm, scale, CFG, "
            "steps, strength, seed, model), cut to the first 4 bars. A = `fgg` is exactly what Generate "
            "makes with Bars = 4 and FGG on; `no_fgg` the same with FGG off."
        )
        with gr.Row():
            system_a = Dropdown(
                system_choices(),
                value="fgg",
                label="System A",
                info="what plays as A (left, or first on a phone)",
                min_width=200,
            )
            system_b = Dropdown(
                system_choices(),
                value="no_fgg",
                label="System B",
                info="what plays as B (right, or second on a phone)",
                min_width=200,
            )
        compare = gr.Button("Compare", variant="primary", elem_id="compare")
        status = gr.Markdown(label="Status", elem_id="compare-status")
        with gr.Row():
            with gr.Column(min_width=280):
                audio_a = gr.Audio(label="A", type="filepath", elem_id="audio-a")
                midi_a = gr.File(label="MIDI A", elem_id="midi-a")
                plot_a = gr.Plot(label="A")
            with gr.Column(min_width=280):
                audio_b = gr.Audio(label="B", type="filepath", elem_id="audio-b")
                midi_b = gr.File(label="MIDI B", elem_id="midi-b")
                plot_b = gr.Plot(label="B")
        diff = gr.Plot(label="Which notes changed")
        table = gr.DataFrame(label="Metrics", interactive=False)
    return CompareTab(
        system_a, system_b, compare, status, audio_a, midi_a, plot_a, audio_b, midi_b, plot_b, diff, table
    )


def wire_compare_tab(tab: CompareTab, generate: GenerateTab, controller: Controller, generation: Admission) -> None:
    """The /compare endpoint: the Generate tab's inputs and the two systems; it shares the
    generation admission and concurrency group with /generate."""

    def compare_body(values: dict[str, Any], request, _progress) -> dict:
        work = partial(controller.compare, CompareRequest(**values))
        result = serve_admitted("/compare", generation, request, work)
        what = f"A = {values['system_a']}, B = {values['system_b']}, seed {int(values['seed'])}"
        return {
            tab.audio_a: result.audio_a,
            tab.audio_b: result.audio_b,
            tab.midi_a: result.midi_a,
            tab.midi_b: result.midi_b,
            tab.plot_a: result.plot_a,
            tab.plot_b: result.plot_b,
            tab.diff: result.diff,
            tab.table: result.table,
            tab.status: done_message(result.warnings, what),
        }

    tab.compare.click(
        api_handler(api_parameters(CompareRequest, controller.default_model), compare_body),
        generate.inputs() + [tab.system_a, tab.system_b],
        [  # the API's returns, in order
            tab.audio_a,
            tab.audio_b,
            tab.midi_a,
            tab.midi_b,
            tab.plot_a,
            tab.plot_b,
            tab.diff,
            tab.table,
            tab.status,
        ],
        api_name="compare",
        concurrency_id="sample",
        concurrency_limit="default",  # the serving layout's jobs (demo.serving.launch)
        show_progress_on=[tab.status],
        validator=validator(
            "/compare",
            COMPARE_PARAMETERS,
            lambda values: controller.compare_spec(CompareRequest(**values)),
            generation,
        ),
    )
