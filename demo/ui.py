"""The Gradio Blocks: Generate, Compare, Evaluate, listening results (admin), and the
listening test on a page of its own (``/listen``). Layout and wiring only; the work is in
``demo.controller`` (and ``demo.listening``/``demo.listening_ui`` for the test).

A public Space is hostile ground: every queued endpoint is validated and admitted when a
request joins the queue (``demo.guard``). Generation, evaluation and the listening test have
separate concurrency groups (the listening test skips the queue), so none waits behind another.
"""

from __future__ import annotations

import inspect
import random

import gradio as gr

from demo import controller as C
from demo.evaluate_tab import build_evaluate_tab
from demo.figures import before_after_figure
from demo.guard import (
    DELETE_CACHE,
    PRIVATE,
    Checkbox,
    Dropdown,
    Number,
    Slider,
    api_handler,
    launch,
    user_error,
    validator,
)
from demo.how_it_works import load_example
from demo.limits import MAX_CHORD_CHARS, Admission, client_of
from demo.listening import ListeningStore
from demo.listening_ui import build_admin_page, build_participant_page
from demo.melody_source import melody_source_radio, wire_melody_source
from eval.baselines import SYSTEMS
from fgg.chords import PITCH_NAMES, parse_progression
from fgg.styles import STYLES

__all__ = ["LISTENING_PATH", "build_app", "launch"]

LISTENING_PATH = "/listen"
HOW_IT_WORKS = """**How it works.** A diffusion model turns noise into a 4-bar piano accompaniment for your chords
(and melody), in 10 denoising steps. At every step, *fine-grained guidance* (FGG) edits the model's
current guess so that no note outside the scale allowed by the chord survives — so the result has no
out-of-key notes (red below), at no extra cost."""


def build_app(
    controller: C.Controller,
    store: ListeningStore | None = None,
    generation: Admission | None = None,
    evaluation: Admission | None = None,
) -> gr.Blocks:
    """``generation``/``evaluation``: how many requests each endpoint holds, in all and per
    visitor (defaults: 16 and 2 for generate + compare, 2 and 1 for evaluate)."""
    store = store or ListeningStore()
    generation = generation or Admission("generation", total=16, per_client=2)
    evaluation = evaluation or Admission("evaluation", total=2, per_client=1)
    model_choices = controller.model_choices()
    example = load_example()

    with gr.Blocks(title="FGG Music", delete_cache=DELETE_CACHE) as app:
        gr.Markdown(
            "# FGG Music\nPiano accompaniment for your chords (and melody) from a diffusion model with "
            "*fine-grained guidance* (Zhu et al., ICML 2025)."
        )
        with gr.Accordion("How it works", open=True), gr.Row():
            with gr.Column(min_width=300):
                gr.Markdown(HOW_IT_WORKS)
            if example is not None:
                with gr.Column(scale=2, min_width=320):
                    gr.Plot(
                        before_after_figure(
                            example["off"], example["on"], example["melody"], example["labels"], example["allowed"]
                        ),
                        show_label=False,
                        elem_id="how-it-works",
                    )

        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=3, min_width=300):
                    chords = gr.Textbox(
                        label="Chord progression",
                        value=C.EXAMPLES["Pop I–V–vi–IV"],
                        elem_id="chords",
                        max_length=MAX_CHORD_CHARS,
                        lines=2,
                        info=f"Bars separated by |, e.g. 'C G | Am F'. Lead-sheet symbols (Am7, G7/B, "
                        f"N.C.) or Harte labels (A:min7); % repeats a bar. At most "
                        f"{MAX_CHORD_CHARS:,} characters.",
                    )
                    with gr.Row():
                        example_buttons = [gr.Button(name, size="sm", min_width=120) for name in C.EXAMPLES]
                    writers = controller.melody_writers()
                    with gr.Row(visible=bool(writers)):
                        style_buttons = [
                            gr.Button(f"🎼 {name}", size="sm", min_width=120, elem_id=f"style-{n}")
                            for n, name in enumerate(STYLES)
                        ]
                    style_note = gr.Markdown(elem_id="style-note")
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
                        melody_status = gr.Markdown(controller.melody_description(None), elem_id="melody-status")
                        clear_segment = gr.Button("✕ no segment", size="sm", min_width=100, elem_id="clear-segment")
                    segment = Number(value=C.NO_SEGMENT, precision=0, visible="hidden", elem_id="segment")
                    melody_file = gr.File(
                        label="Melody MIDI (optional, ≤ 1 MB; replaces a segment's melody)",
                        file_types=[".mid", ".midi"],
                        elem_id="melody-file",
                    )
                    with gr.Row():
                        bars = Slider(
                            *C.BAR_RANGE,
                            value=4,
                            step=1,
                            label="Bars",
                            elem_id="bars",
                            info="follows the progression's length unless you move it",
                        )
                        tempo = Slider(
                            *C.TEMPO_RANGE,
                            value=90,
                            step=1,
                            label="Tempo (BPM)",
                            info="playback speed; does not change the notes",
                        )
                with gr.Column(scale=2, min_width=300):
                    model = Dropdown(
                        model_choices,
                        value=controller.default_model,
                        label="Model",
                        elem_id="model",
                        info="paper: trained as in the paper; small: 10× fewer parameters; "
                        "combined: writes the melody too",
                    )
                    fgg = Checkbox(
                        value=True,
                        label="Fine-grained guidance (FGG)",
                        elem_id="fgg-toggle",
                        info="off = the model alone (it may play out-of-key notes)",
                    )
                    strength = Slider(
                        0,
                        1,
                        value=1.0,
                        step=0.05,
                        label="FGG strength",
                        info="share of the out-of-key pitch classes forbidden, harshest first (1 = all)",
                    )
                    cfg = Slider(
                        *C.CFG_RANGE,
                        value=7.5,
                        step=0.5,
                        label="CFG scale",
                        elem_id="cfg",
                        interactive=False,
                        info=C.CFG_HELP[False],
                    )
                    rhythm = Dropdown(
                        C.RHYTHM_CHOICES,
                        value="none",
                        label="Rhythm",
                        elem_id="rhythm",
                        info="onsets per 16th the accompaniment must play; none = the model decides",
                    )
                    with gr.Row():
                        scale = Dropdown(
                            C.SCALE_CHOICES,
                            value="from chords",
                            label="Scale",
                            min_width=140,
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
                            min_width=140,
                            info="how a chord becomes allowed notes (Scale = from chords)",
                        )
                        scale_mode = Dropdown(
                            [("scale + each chord's tones", "with_chords"), ("scale only (strict)", "strict")],
                            value="with_chords",
                            label="User scale",
                            min_width=140,
                            info="a named/custom scale also allows the chord's own notes, or not",
                        )
                    steps = Slider(
                        *C.STEP_RANGE,
                        value=10,
                        step=1,
                        label="Sampling steps",
                        info="10 = the paper; more is slower, rarely better",
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
                            minimum=0,
                            maximum=2**31 - 1,
                            min_width=120,
                            info="same seed + same settings = same music",
                        )
                        dice = gr.Button("🎲 random", size="sm", min_width=80)
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                cancel_btn = gr.Button("Cancel", variant="stop")
            gen_status = gr.Markdown(elem_id="generate-status")
            with gr.Row():
                audio = gr.Audio(label="Audio", type="filepath", elem_id="audio-out")
                midi_out = gr.File(label="MIDI", elem_id="midi-out")
                wav_out = gr.File(label="WAV (44.1 kHz stereo)", elem_id="wav-out")
            roll_plot = gr.Plot(label="Piano roll")
            metrics = gr.JSON(label="Metrics of this sample")

        with gr.Tab("Compare"):
            gr.Markdown(
                "Two systems on **the Generate tab's settings** (chords, segment, melody, rhythm, scale, CFG, "
                "steps, strength, seed, model), cut to the first 4 bars. A = `fgg` is exactly what Generate "
                "makes with Bars = 4 and FGG on; `no_fgg` the same with FGG off."
            )
            with gr.Row():
                system_a = Dropdown(
                    [(f"{s} — {C.SYSTEM_HELP[s]}", s) for s in SYSTEMS],
                    value="fgg",
                    label="System A",
                    info="what plays on the left",
                    min_width=200,
                )
                system_b = Dropdown(
                    [(f"{s} — {C.SYSTEM_HELP[s]}", s) for s in SYSTEMS],
                    value="no_fgg",
                    label="System B",
                    info="what plays on the right",
                    min_width=200,
                )
            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
            compare_status = gr.Markdown(elem_id="compare-status")
            with gr.Row():
                with gr.Column(min_width=280):
                    audio_a = gr.Audio(label="A", type="filepath", elem_id="audio-a")
                    midi_a = gr.File(label="MIDI A", elem_id="midi-a")
                    plot_a = gr.Plot(label="A")
                with gr.Column(min_width=280):
                    audio_b = gr.Audio(label="B", type="filepath", elem_id="audio-b")
                    midi_b = gr.File(label="MIDI B", elem_id="midi-b")
                    plot_b = gr.Plot(label="B")
            diff_plot = gr.Plot(label="Which notes changed")
            compare_table = gr.DataFrame(label="Metrics", interactive=False)

        with gr.Tab("Evaluate"):
            build_evaluate_tab(app, controller, model_choices, evaluation)

        with gr.Tab("Listening test"):
            gr.Markdown(
                f"The blind listening test has a page of its own, with nothing else on it: "
                f"[open the listening test]({LISTENING_PATH})."
            )
        with gr.Tab("Listening results (admin)"):
            build_admin_page(store)

        # ---------------------------------------------------------------- wiring

        gen_inputs = [
            chords,
            segment,
            melody_file,
            bars,
            tempo,
            fgg,
            strength,
            cfg,
            rhythm,
            scale,
            tonic,
            custom_scale,
            steps,
            seed,
            model,
            scale_table,
            scale_mode,
            humanize,
            pedal,
        ]
        private = PRIVATE

        def done_message(warnings, what: str) -> str:
            return "\n".join([f"✓ {what}"] + [f"⚠️ {w}" for w in warnings])

        # The API parameters of /generate (and, with two more, /compare): the controller's own,
        # with its defaults, the served default model named.
        request_parameters = [
            p.replace(default=controller.default_model) if p.name == "model" else p
            for p in inspect.signature(controller.resolve).parameters.values()
        ]

        def generate_body(values, request, progress):
            try:
                mp3, midi, figure, sample, wav = controller.generate(
                    **values,
                    progress=lambda done, total: progress((done, total), desc="sampling", unit="steps"),
                )
            except ValueError as err:
                raise user_error("/generate", err) from None
            finally:
                generation.release(client_of(request))
            for warning in sample.get("warnings", []):
                gr.Warning(warning)
            return (
                mp3,
                midi,
                figure,
                sample,
                done_message(
                    sample.get("warnings", []),
                    f"{sample['notes']} notes in {sample['seconds']:.2f} s, audio in {sample['render_seconds']:.2f} s",
                ),
                wav,
            )

        do_generate = api_handler(request_parameters, generate_body)

        gen_event = generate_btn.click(
            do_generate,
            gen_inputs,
            [audio, midi_out, roll_plot, metrics, gen_status, wav_out],
            api_name="generate",
            concurrency_id="sample",
            concurrency_limit=2,
            show_progress_on=[gen_status],
            validator=validator("/generate", C.GENERATE_PARAMETERS, controller.resolve, generation),
        )
        cancel_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")
        dice.click(lambda: random.randint(0, 2**31 - 1), None, seed, **private)

        # Bars follow the progression until the visitor moves the slider.
        bars_follow = gr.State(True)

        def follow_chords(text, follow):
            if not follow:
                return gr.skip()
            try:
                n = parse_progression(text[:MAX_CHORD_CHARS]).n_bars
            except (ValueError, TypeError):
                return gr.skip()
            return min(max(n, C.BAR_RANGE[0]), C.BAR_RANGE[1])

        chords.change(follow_chords, [chords, bars_follow], bars, **private)
        bars.input(lambda: False, None, bars_follow, **private)

        wire_melody_source(controller, melody_source, model, melody_file, segment_picker)

        def cfg_state(melody_file, segment, rhythm, model_name):
            given = bool(melody_file) or segment not in (None, C.NO_SEGMENT)
            effect = (given and model_name not in writers) or rhythm not in (None, "none")
            return gr.update(interactive=effect, info=C.CFG_HELP[effect])

        for control in (melody_file, segment, rhythm, model):
            control.change(cfg_state, [melody_file, segment, rhythm, model], cfg, **private)

        def melody_text(melody_file, segment, model_name):
            seg = None if segment in (None, C.NO_SEGMENT) else int(segment)
            return controller.melody_description(seg, getattr(melody_file, "name", melody_file), model_name)

        for control in (melody_file, model):
            control.change(melody_text, [melody_file, segment, model], melody_status, **private)

        def pick_style(name):
            """A style preset: its chords and strict scale, 8 bars, on the first melody-writing model."""
            style = STYLES[name]
            tonic, scale_name = style.scale.split()
            return (
                style.chords,
                8,
                False,
                tonic,
                scale_name,
                "strict",
                writers[0],
                C.NO_SEGMENT,
                None,
                None,
                "none",
                f"**{style.name}**: {style.why} FGG keeps every note in the scale; compare with FGG off.",
            )

        for button, name in zip(style_buttons, STYLES, strict=True):
            button.click(
                lambda n=name: pick_style(n),
                None,
                [
                    chords,
                    bars,
                    bars_follow,
                    tonic,
                    scale,
                    scale_mode,
                    model,
                    segment,
                    song_picker,
                    segment_picker,
                    rhythm,
                    style_note,
                ],
                **private,
            )

        def no_segment():  # and bars follow the chords again
            return True, C.NO_SEGMENT, None, None, "none", controller.melody_description(None)

        segment_outputs = [bars_follow, segment, song_picker, segment_picker, rhythm, melody_status]
        for button, text in zip(example_buttons, C.EXAMPLES.values(), strict=True):
            button.click(lambda t=text: (t,) + no_segment(), None, [chords] + segment_outputs, **private)
        clear_segment.click(no_segment, None, segment_outputs, **private)

        def pick_song(song):
            try:
                return gr.update(choices=controller.segment_choices(song), value=None)
            except (ValueError, TypeError):
                return gr.update(choices=[], value=None)

        song_picker.input(pick_song, song_picker, segment_picker, **private)

        def pick_segment(index, melody_file, model_name):
            try:
                text, seg_tempo, _ = controller.segment_fields(index)
            except ValueError:
                return (gr.skip(),) * 7
            return (
                index,
                text,
                seg_tempo,
                "from segment",
                C.SEGMENT_BARS,
                True,
                controller.melody_description(int(index), getattr(melody_file, "name", melody_file), model_name),
            )

        segment_picker.input(
            pick_segment,
            [segment_picker, melody_file, model],
            [segment, chords, tempo, rhythm, bars, bars_follow, melody_status],
            **private,
        )

        def compare_body(values, request, _progress):
            try:
                *outputs, warnings = controller.compare(**values)
            except ValueError as err:
                raise user_error("/compare", err) from None
            finally:
                generation.release(client_of(request))
            for warning in warnings:
                gr.Warning(warning)
            system_a, system_b, seed = values["system_a"], values["system_b"], values["seed"]
            return *outputs, done_message(warnings, f"A = {system_a}, B = {system_b}, seed {int(seed)}")

        keyword = inspect.Parameter.KEYWORD_ONLY
        do_compare = api_handler(
            request_parameters
            + [
                inspect.Parameter("system_a", keyword, default="fgg"),
                inspect.Parameter("system_b", keyword, default="no_fgg"),
            ],
            compare_body,
        )

        def check_compare(*values):
            *values, system_a, system_b = values
            controller.compare_request(*values, system_a=system_a, system_b=system_b)

        compare_btn.click(
            do_compare,
            gen_inputs + [system_a, system_b],
            [audio_a, audio_b, midi_a, midi_b, plot_a, plot_b, diff_plot, compare_table, compare_status],
            api_name="compare",
            concurrency_id="sample",
            concurrency_limit=2,
            show_progress_on=[compare_status],
            validator=validator(
                "/compare", C.GENERATE_PARAMETERS + ("system_a", "system_b"), check_compare, generation
            ),
        )

    # The participant's page: its own route, so the browser receives only its components
    # (Gradio sends each page just its own part of the config) — no system names from the
    # Compare/Evaluate tabs, nothing about the pool.
    with app.route("Listening test", LISTENING_PATH):
        build_participant_page(store)
    return app
