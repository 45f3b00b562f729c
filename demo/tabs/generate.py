"""The Generate tab: chords (typed, an example, a style preset or a POP909 segment), a melody,
the sampler's settings, and the music with its piano roll and metrics (the /generate API).

``build_generate_tab`` lays the tab out and returns its components by name (``GenerateTab``;
the inputs are named as the API's parameters); ``wire_generate_tab`` connects them, after the
whole page is laid out (its ``gr.State`` is made there, so the layout's component ids stay).
"""

from __future__ import annotations

import random
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from demo.audio import stream_pieces
from demo.controller import Controller, GenerateResult
from demo.guard import (
    PRIVATE,
    Checkbox,
    Dropdown,
    Number,
    Slider,
    api_handler,
    serve_admitted,
    stream_admitted,
    validator,
)
from demo.limits import MAX_CHORD_CHARS, PUBLIC_LIMITS, Admission
from demo.melody_source import NONE, SEGMENT, UPLOAD, melody_line, melody_source_radio, model_for_source, source_shown
from demo.request import (
    GENERATE_PARAMETERS,
    NO_SEGMENT,
    SAMPLERS,
    AppRequest,
    api_parameters,
)
from demo.tabs.generate_options import CFG_HELP, guidance_inputs, sampling_inputs, scale_inputs
from demo.workers import Outbox, keep_share
from fgg.chords import describe_reading, parse_progression
from fgg.pianoroll import SEGMENT_BARS
from fgg.styles import STYLES

EXAMPLES = {
    "Pop I–V–vi–IV": "C G | Am F",
    "Jazz ii–V–I": "Dm7 | G7 | Cmaj7 | Cmaj7",
    "Minor-key ballad": "Am | F | Dm | E7",
    "Dorian vamp": "Dm7 | G | Dm7 | G",
}
STYLE_BARS = 8  # a style preset's length: its progression twice


@dataclass(frozen=True)
class GenerateTab:
    """The tab's components; those of the /generate parameters carry the parameter's name."""

    chords: gr.Textbox
    chords_reading: gr.Markdown  # how the chords are read, bar by bar
    example_buttons: list[gr.Button]
    style_buttons: list[gr.Button]
    style_note: gr.Markdown
    melody_source: gr.Radio
    song_picker: gr.Dropdown
    segment_picker: gr.Dropdown
    melody_status: gr.Markdown
    clear_segment: gr.Button
    segment: gr.Number
    melody_file: gr.File
    bars: gr.Slider
    tempo: gr.Slider
    model: gr.Dropdown
    fgg: gr.Checkbox
    strength: gr.Slider
    cfg_scale: gr.Slider
    rhythm: gr.Dropdown
    force_rhythm: gr.Checkbox
    melody_rhythm: gr.Dropdown
    melody_rhythm_note: gr.Markdown
    scale: gr.Dropdown
    tonic: gr.Dropdown
    custom_scale: gr.Textbox
    scale_table: gr.Dropdown
    scale_mode: gr.Dropdown
    solver: gr.Radio
    steps: gr.Slider
    humanize: gr.Checkbox
    pedal: gr.Checkbox
    seed: gr.Number
    dice: gr.Button
    generate: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    audio: gr.Audio
    midi: gr.File
    wav: gr.File
    figure: gr.Plot
    metrics: gr.JSON
    api_generate: gr.Button  # hidden: the /generate API's trigger
    api_audio: gr.Audio  # hidden: the /generate API's MP3

    def inputs(self) -> list[gr.components.Component]:
        """The components of the /generate parameters, in the API's order."""
        return [getattr(self, name) for name in GENERATE_PARAMETERS]


# -- layout


def build_generate_tab(controller: Controller) -> GenerateTab:
    """The tab, laid out (inside the current ``gr.Blocks``): the chords, the model, FGG on/off
    and Generate on the first screen (desktop and phone), every other setting under "More
    options", then the music."""
    with gr.Tab("Generate"):
        with gr.Row():
            with gr.Column(scale=3, min_width=300):
                music = _chords_inputs(controller)
            with gr.Column(scale=2, min_width=300):
                first = _first_choices(controller)
                with gr.Row():
                    buttons: dict[str, Any] = {
                        "generate": gr.Button("Generate", variant="primary", elem_id="generate"),
                        "cancel": gr.Button("Cancel", variant="stop", elem_id="cancel"),
                    }
                status = gr.Markdown(label="Status", elem_id="generate-status")  # label: the API names it
        with (
            gr.Accordion(
                "More options: melody, bars and tempo, rhythm, FGG strength, scale, sampler, seed",
                open=False,
                elem_id="more-options",
            ),
            gr.Row(),
        ):
            with gr.Column(scale=3, min_width=300):
                source = _source_inputs(controller)
            with gr.Column(scale=2, min_width=300):
                settings = guidance_inputs(controller) | scale_inputs() | sampling_inputs()
        with gr.Row():
            files: dict[str, Any] = {
                # Streamed: a long piece plays from its first 4-bar window on (_wire_generate).
                "audio": gr.Audio(label="Audio", streaming=True, autoplay=True, elem_id="audio-out"),
                "midi": gr.File(label="MIDI", elem_id="midi-out"),
                "wav": gr.File(label="WAV (44.1 kHz stereo)", elem_id="wav-out"),
            }
        figure = gr.Plot(label="Piano roll")
        metrics = gr.JSON(label="Metrics of this sample", elem_id="metrics-out")
        # The /generate API's own trigger and MP3 output: an API client wants a file, not a stream.
        api: dict[str, Any] = {
            "api_generate": gr.Button(visible=False),
            "api_audio": gr.Audio(label="Audio", visible=False),
        }
    return GenerateTab(
        **music, **first, **source, **settings, **buttons, status=status, **files, figure=figure, metrics=metrics, **api
    )


def _chords_inputs(controller: Controller) -> dict[str, Any]:
    chords = gr.Textbox(
        label="Chord progression",
        value=EXAMPLES["Pop I–V–vi–IV"],
        elem_id="chords",
        lines=1,
        info="One chord per bar, or | between bars: 'C G | Am F' (Am7, G7/B, N.C., A:min7; % repeats a bar)",
    )
    reading = gr.Markdown(chords_reading(EXAMPLES["Pop I–V–vi–IV"]), elem_id="chords-reading")
    with gr.Row():
        example_buttons = [gr.Button(name, size="sm", min_width=120) for name in EXAMPLES]
    with gr.Row(visible=bool(controller.melody_writers())):
        style_buttons = [
            gr.Button(f"🎼 {name}", size="sm", min_width=120, elem_id=f"style-{n}") for n, name in enumerate(STYLES)
        ]
    return {
        "chords": chords,
        "chords_reading": reading,
        "example_buttons": example_buttons,
        "style_buttons": style_buttons,
        "style_note": gr.Markdown(elem_id="style-note", visible=False),  # shown by a preset (it takes room)
    }


def _source_inputs(controller: Controller) -> dict[str, Any]:
    melody_source = melody_source_radio(controller)
    with gr.Row():
        song_picker = Dropdown(
            controller.song_choices(),
            value=None,
            label="…or a POP909 song",
            elem_id="song-picker",
            scale=2,
            min_width=200,
            info="88 validation songs; type to search (number, key)",
        )
        segment_picker = Dropdown(
            [],
            value=None,
            label="Segment (4 bars)",
            elem_id="segment-picker",
            scale=2,
            min_width=200,
            info="fills and replaces the chords, melody, tempo and rhythm",
        )
    with gr.Row():
        melody_status = gr.Markdown(
            melody_line(controller, None, controller.default_model, None, None), elem_id="melody-status"
        )
        clear_segment = gr.Button("✕ no segment", size="sm", min_width=100, elem_id="clear-segment")
    segment = Number(value=NO_SEGMENT, precision=0, visible="hidden", label="POP909 segment index", elem_id="segment")
    melody_file = gr.File(
        label="Melody MIDI (optional, ≤ 1 MB; replaces a segment's melody)",
        file_types=[".mid", ".midi"],
        elem_id="melody-file",
    )
    with gr.Row():
        bars = Slider(
            *PUBLIC_LIMITS.bars,
            value=4,
            step=1,
            label="Bars",
            elem_id="bars",
            info="follows the progression's length unless you move it",
        )
        tempo = Slider(
            *PUBLIC_LIMITS.tempo,
            value=90,
            step=1,
            label="Tempo (BPM)",
            info="playback speed; does not change the notes",
        )
    return {
        "melody_source": melody_source,
        "song_picker": song_picker,
        "segment_picker": segment_picker,
        "melody_status": melody_status,
        "clear_segment": clear_segment,
        "segment": segment,
        "melody_file": melody_file,
        "bars": bars,
        "tempo": tempo,
    }


def _first_choices(controller: Controller) -> dict[str, Any]:
    return {
        "model": Dropdown(
            controller.model_choices(),
            value=controller.default_model,
            label="Model",
            elem_id="model",  # its labels say what each model is (Controller.model_choices)
        ),
        "fgg": Checkbox(
            value=True,
            label="Fine-grained guidance (FGG)",
            elem_id="fgg-toggle",
            info="off = the model alone (it may play out-of-key notes)",
        ),
    }


# -- wiring


def chords_reading(text) -> str:
    """The line under the chords box: how they are read ("Read as 4 bars: Am | F | C | G"), or
    why they cannot be."""
    if not isinstance(text, str) or len(text) > MAX_CHORD_CHARS:
        return f"✗ The chords are longer than {MAX_CHORD_CHARS:,} characters."
    try:
        parse_progression(text)
        return f"Read as {describe_reading(text)}"
    except ValueError as err:
        return f"✗ {err}"


def done_message(warnings, what: str) -> str:
    """The status line of a finished request, its warnings below."""
    return "\n".join([f"✓ {what}"] + [f"⚠️ {w}" for w in warnings])


@dataclass(frozen=True)
class BarsFollow:
    """Who set the Bars slider: the visitor (``by_visitor``), or a style preset for its own
    chords (``preset``: ``{"chords": …, "left": the note once the chords are changed}``)."""

    by_visitor: gr.State
    preset: gr.State


def wire_generate_tab(tab: GenerateTab, controller: Controller, generation: Admission) -> None:
    """Connect the tab (inside the ``gr.Blocks``, after the whole page is laid out)."""
    _wire_generate(tab, controller, generation)
    bars_follow = BarsFollow(by_visitor=gr.State(False), preset=gr.State(None))
    _wire_bars_follow(tab, bars_follow)
    tab.chords.change(chords_reading, tab.chords, tab.chords_reading, **PRIVATE)
    _wire_melody_source(tab, controller)
    _wire_cfg(tab, controller)
    _wire_melody_rhythm(tab, controller)
    _wire_sampler(tab)
    _wire_presets(tab, controller, bars_follow)
    _wire_segment_pickers(tab, controller, bars_follow)


def _wire_generate(tab: GenerateTab, controller: Controller, generation: Admission) -> None:
    """The Generate button (audio streamed as it is made), the /generate API (the same music,
    returned as files), the Cancel button and the dice."""

    def finished(result: GenerateResult) -> dict:
        m = result.metrics
        what = f"{m['bars']} bars, {m['notes']} notes in {m['seconds']:.2f} s, audio in {m['render_seconds']:.2f} s"
        return {
            tab.midi: result.midi,
            tab.figure: result.figure,
            tab.metrics: result.metrics,
            tab.status: done_message(result.warnings, what),
            tab.wav: result.wav,
        }

    def work(values: dict[str, Any], progress, outbox: Outbox | None = None) -> GenerateResult:
        def report(done: int, total: int) -> None:  # after each sampler step, in the generation's thread
            if outbox is not None:
                outbox.check()  # the visitor left or cancelled: stop here
            keep_share()  # another generation started or ended: its share of the cores changed
            progress((done, total), desc="sampling", unit="steps")

        listen = None if outbox is None else outbox.put
        return controller.generate(AppRequest(**values), progress=report, listen=listen)

    def stream_body(values: dict[str, Any], request, progress):
        # closing: when Gradio closes this generator (the visitor left), the work's stream closes too.
        with closing(stream_admitted("/generate", generation, request, partial(work, values, progress))) as items:
            for item in items:
                if isinstance(item, GenerateResult):
                    yield finished(item)
                else:
                    yield from ({tab.audio: piece} for piece in stream_pieces(item))

    def api_body(values: dict[str, Any], request, progress) -> dict:
        result = serve_admitted("/generate", generation, request, partial(work, values, progress))
        return {tab.api_audio: result.audio} | finished(result)

    def announce(*values):
        """What is wrong with the request, in the status line next to the button (the validator
        marks the input too), replacing the last ✓; a good request leaves the line to its run."""
        try:
            controller.resolve(AppRequest(**dict(zip(GENERATE_PARAMETERS, values, strict=True))))
        except ValueError as err:
            return f"✗ {err}\n\n*Nothing was generated: the music below, if any, is from your previous request.*"
        return gr.skip()

    parameters = api_parameters(AppRequest, controller.default_model)
    check = validator(
        "/generate", GENERATE_PARAMETERS, lambda values: controller.resolve(AppRequest(**values)), generation
    )
    queued: dict[str, Any] = {"concurrency_id": "sample", "concurrency_limit": "default"}  # the layout's jobs
    # First: a failed validation stops the trigger's later events in the browser.
    tab.generate.click(announce, tab.inputs(), tab.status, **PRIVATE)
    event = tab.generate.click(
        api_handler(parameters, stream_body),
        tab.inputs(),
        [tab.audio, tab.midi, tab.figure, tab.metrics, tab.status, tab.wav],
        api_visibility="private",
        show_progress_on=[tab.status],
        validator=check,
        **queued,
    )
    tab.api_generate.click(
        api_handler(parameters, api_body),
        tab.inputs(),
        [tab.api_audio, tab.midi, tab.figure, tab.metrics, tab.status, tab.wav],  # the API's returns, in order
        api_name="generate",
        validator=check,
        **queued,
    )

    tab.cancel.click(None, None, None, cancels=[event], api_visibility="private")
    tab.dice.click(lambda: random.randint(*PUBLIC_LIMITS.seed), None, tab.seed, **PRIVATE)


def _wire_bars_follow(tab: GenerateTab, follow: BarsFollow) -> None:
    """Bars follow the chords, unless the visitor moved the slider or a preset set them for its
    own chords; once the chords are not the preset's, its note says what it left set."""

    def follow_chords(text, by_visitor, preset) -> dict:
        update: dict[Any, Any] = {tab.bars: gr.skip()}  # (an empty dict reads as one value)
        if preset and text != preset["chords"]:
            update |= {tab.style_note: gr.update(value=preset["left"], visible=True), follow.preset: None}
        if by_visitor or (preset and text == preset["chords"]):
            return update
        try:
            n = parse_progression(text[:MAX_CHORD_CHARS]).n_bars
        except (ValueError, TypeError):
            return update
        return update | {tab.bars: min(max(n, PUBLIC_LIMITS.bars[0]), PUBLIC_LIMITS.bars[1])}

    tab.chords.change(
        follow_chords,
        [tab.chords, follow.by_visitor, follow.preset],
        [tab.bars, tab.style_note, follow.preset],
        **PRIVATE,
    )
    tab.bars.input(lambda: True, None, follow.by_visitor, **PRIVATE)


def _wire_cfg(tab: GenerateTab, controller: Controller) -> None:
    """CFG is enabled (and says why) only where it has an effect."""
    writers = controller.melody_writers()

    def cfg_state(melody_file, segment, rhythm, model_name):
        given = bool(melody_file) or segment not in (None, NO_SEGMENT)
        effect = (given and model_name not in writers) or rhythm not in (None, "none")
        return gr.update(interactive=effect, info=CFG_HELP[effect])

    cfg_inputs: list[Any] = [tab.melody_file, tab.segment, tab.rhythm, tab.model]
    for control in cfg_inputs:
        control.change(cfg_state, cfg_inputs, tab.cfg_scale, **PRIVATE)


def _segment_of(value) -> int | None:
    return None if value in (None, NO_SEGMENT) else int(value)


def _path_of(upload) -> str | None:
    return getattr(upload, "name", upload)


def segment_cleared(tab: GenerateTab) -> dict:
    """No segment: its chords stay in the box, its melody and rhythm go."""
    return {tab.segment: NO_SEGMENT, tab.song_picker: None, tab.segment_picker: None, tab.rhythm: "none"}


def _wire_melody_source(tab: GenerateTab, controller: Controller) -> None:
    """The Melody radio, the model and the melody line in step (``.input`` for the visitor's own
    clicks, so that one side's update does not bounce back)."""
    private = dict(PRIVATE, show_progress="hidden")

    def chosen(source, model_name) -> dict:
        picked = {tab.model: model_for_source(controller, source, model_name)}
        return picked | ({tab.melody_file: None} | segment_cleared(tab) if source == NONE else {})

    tab.melody_source.input(
        chosen,
        [tab.melody_source, tab.model],
        [tab.model, tab.melody_file, tab.segment, tab.song_picker, tab.segment_picker, tab.rhythm],
        **private,
    )
    for event, source in ((tab.melody_file.upload, UPLOAD), (tab.segment_picker.input, SEGMENT)):
        event(partial(model_for_source, controller, source), tab.model, tab.model, **private)

    def shown(model_name, upload, segment, source=None) -> str:  # a choice not given yet stays
        return source_shown(controller, model_name, _path_of(upload), _segment_of(segment), source)

    tab.model.change(shown, [tab.model, tab.melody_file, tab.segment, tab.melody_source], tab.melody_source, **private)
    for given in (tab.melody_file, tab.segment):
        given.change(shown, [tab.model, tab.melody_file, tab.segment], tab.melody_source, **private)

    def line(source, model_name, upload, segment) -> str:
        return melody_line(controller, source, model_name, _path_of(upload), _segment_of(segment))

    line_inputs: list[Any] = [tab.melody_source, tab.model, tab.melody_file, tab.segment]
    for control in line_inputs:
        control.change(line, line_inputs, tab.melody_status, **private)


def _wire_sampler(tab: GenerateTab) -> None:
    """Choosing a sampler sets its number of steps (the slider stays free to move)."""
    steps = {solver: n for solver, n in SAMPLERS.values()}
    tab.solver.change(lambda solver: steps.get(solver, gr.skip()), tab.solver, tab.steps, **PRIVATE)


def _wire_melody_rhythm(tab: GenerateTab, controller: Controller) -> None:
    """The melody rhythm is a choice only for a model that writes the melody (back to "auto"
    for one that does not); the line under it says what the choice plays."""
    writers = controller.melody_writers()

    def enabled(model_name, melody_rhythm):
        writes = model_name in writers
        return gr.update(interactive=writes, value=melody_rhythm if writes else "auto")

    tab.model.change(enabled, [tab.model, tab.melody_rhythm], tab.melody_rhythm, **PRIVATE)
    note_inputs: list[Any] = [tab.melody_rhythm, tab.rhythm, tab.segment, tab.model]
    for control in note_inputs:
        control.change(controller.melody_rhythm_text, note_inputs, tab.melody_rhythm_note, **PRIVATE)


def _wire_presets(tab: GenerateTab, controller: Controller, follow: BarsFollow) -> None:
    """The style presets, the examples and "no segment"."""
    writers = controller.melody_writers()

    def cleared() -> dict:  # no segment, and bars follow the chords again
        return segment_cleared(tab) | {follow.by_visitor: False}

    def pick_style(name: str) -> dict:
        """A style preset: its chords and strict scale, 8 bars, on the first melody-writing
        model; the note says what it set, and what stays set once the chords change."""
        style = STYLES[name]
        tonic, scale_name = style.scale.split()
        model = writers[0]
        return cleared() | {
            tab.chords: style.chords,
            tab.bars: STYLE_BARS,
            follow.preset: {"chords": style.chords, "left": style_left_note(style.name, style.scale, model)},
            tab.tonic: tonic,
            tab.scale: scale_name,
            tab.scale_mode: "strict",
            tab.model: model,
            tab.style_note: gr.update(value=style_note(style.name, style.why, style.scale, model), visible=True),
        }

    segment_outputs = [follow.by_visitor, tab.segment, tab.song_picker, tab.segment_picker, tab.rhythm]
    style_outputs = [tab.chords, tab.bars, follow.preset, tab.tonic, tab.scale, tab.scale_mode, tab.model]
    style_outputs += [*segment_outputs, tab.style_note]
    for button, name in zip(tab.style_buttons, STYLES, strict=True):
        button.click(lambda n=name: pick_style(n), None, style_outputs, **PRIVATE)
    for button, text in zip(tab.example_buttons, EXAMPLES.values(), strict=True):
        button.click(lambda t=text: cleared() | {tab.chords: t}, None, [tab.chords, *segment_outputs], **PRIVATE)
    tab.clear_segment.click(cleared, None, segment_outputs, **PRIVATE)


def style_note(name: str, why: str, scale: str, model: str) -> str:
    """What a style preset is, and everything it set (some of it under More options)."""
    return (
        f"**{name}**: {why} Set: these chords, **{STYLE_BARS} bars**, the **{model}** model (it writes the "
        f"melody too) and the scale **{scale}, strict** (More options). FGG keeps every note in the scale; "
        "compare with FGG off."
    )


def style_left_note(name: str, scale: str, model: str) -> str:
    """The note once the chords are no longer the preset's: what it left set."""
    return (
        f"The {name} preset left the **{model}** model and the scale **{scale}, strict** set; "
        "change them above and under More options."
    )


def _wire_segment_pickers(tab: GenerateTab, controller: Controller, follow: BarsFollow) -> None:
    """A song, then one of its 4-bar segments: chords, tempo, rhythm and melody at once."""

    def pick_song(song):
        try:
            return gr.update(choices=controller.segment_choices(song), value=None)
        except (ValueError, TypeError):
            return gr.update(choices=[], value=None)

    tab.song_picker.input(pick_song, tab.song_picker, tab.segment_picker, **PRIVATE)

    def pick_segment(index):
        try:
            text, seg_tempo, _ = controller.segment_fields(index)
        except ValueError:
            return gr.skip()
        return {
            tab.segment: index,
            tab.chords: text,
            tab.tempo: seg_tempo,
            tab.rhythm: "from segment",
            tab.bars: SEGMENT_BARS,
            follow.by_visitor: False,
        }

    tab.segment_picker.input(
        pick_segment,
        tab.segment_picker,
        [tab.segment, tab.chords, tab.tempo, tab.rhythm, tab.bars, follow.by_visitor],
        **PRIVATE,
    )
