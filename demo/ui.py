"""The Gradio Blocks: Generate, Compare, Evaluate, listening results (admin), and the
listening test on a page of its own (``/listen``). Layout and wiring only; the work is in
``demo.controller`` (and ``demo.listening``/``demo.listening_ui`` for the test)."""
from __future__ import annotations

import random
from functools import wraps

import gradio as gr

from demo import controller as C
from demo.listening import ListeningStore
from demo.listening_ui import build_admin_page, build_participant_page
from eval.baselines import SYSTEMS
from eval.plots import metric_bar, out_of_key_heatmap
from eval.run import METRIC_COLUMNS
from eval.strength_curve import curve_figure
from fgg.chords import PITCH_NAMES

NO_SEGMENT = -1
LISTENING_PATH = "/listen"


def user_errors(fn):
    """Turn the controller's ValueErrors (bad chord token, bad file, out-of-range value) into
    gr.Error so the page shows the message, never a stack trace."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, PermissionError) as err:
            raise gr.Error(str(err)) from None
    return wrapper


def _progress_callback(progress: gr.Progress):
    return lambda done, total: progress((done, total), desc="sampling", unit="steps")


def build_app(controller: C.Controller, store: ListeningStore | None = None) -> gr.Blocks:
    store = store or ListeningStore()
    segment_choices = [("— none (use the chords above) —", NO_SEGMENT)] + controller.segment_choices()
    model_choices = controller.model_choices()
    # Committed evaluation runs, one folder per shipped model (assets/eval/<model>/).
    eval_runs = {name: C.load_eval_results(C.EVAL_DIR / name) for name in ("paper", "small")}
    eval_runs = {name: run for name, run in eval_runs.items() if run[0] is not None}
    shown_run = next(iter(eval_runs), None)
    strength_curve = C.load_strength_curve()

    with gr.Blocks(title="FGG Music") as app:
        gr.Markdown("# FGG Music\nFine-grained guidance for diffusion-based piano accompaniment "
                    "(Zhu et al., ICML 2025): chords (and a melody) in, an accompaniment that never leaves "
                    "the allowed notes out. Bars are separated by `|`; chords are lead-sheet symbols "
                    "(`Am7`, `G7/B`, `N.C.`) or Harte labels (`A:min7`).")
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=3):
                    chords = gr.Textbox(label="Chord progression", value=C.EXAMPLES["Pop I–V–vi–IV"], elem_id="chords")
                    with gr.Row():
                        example_buttons = [gr.Button(name, size="sm") for name in C.EXAMPLES]
                    with gr.Row():
                        segment_picker = gr.Dropdown(segment_choices, value=NO_SEGMENT, scale=3, elem_id="segment-picker",
                                                     label="…or a POP909 validation segment (fills chords, melody, rhythm)")
                        segment = gr.Number(value=NO_SEGMENT, precision=0, minimum=NO_SEGMENT, label="segment # (−1 = none)",
                                            scale=1, elem_id="segment")
                    melody_file = gr.File(label="Melody MIDI (optional, ≤ 1 MB)", file_types=[".mid", ".midi"])
                    with gr.Row():
                        bars = gr.Slider(*C.BAR_RANGE, value=4, step=1, label="Bars")
                        tempo = gr.Slider(*C.TEMPO_RANGE, value=90, step=1, label="Tempo (BPM)")
                with gr.Column(scale=2):
                    model = gr.Dropdown(model_choices, value=controller.default_model, label="Model", elem_id="model")
                    fgg = gr.Checkbox(value=True, label="Fine-grained guidance (FGG)", elem_id="fgg-toggle")
                    strength = gr.Slider(0, 1, value=1.0, step=0.05,
                                         label="FGG strength (share of the out-of-key notes forbidden, harshest first; 1 = all)")
                    cfg = gr.Slider(*C.CFG_RANGE, value=7.5, step=0.5, label="CFG scale")
                    rhythm = gr.Dropdown(C.RHYTHM_CHOICES, value="none", label="Rhythm")
                    with gr.Row():
                        scale = gr.Dropdown(C.SCALE_CHOICES, value="from chords", label="Scale")
                        tonic = gr.Dropdown(PITCH_NAMES, value="C", label="Tonic")
                    custom_scale = gr.Textbox(label="Custom scale notes (with Scale = custom)", placeholder="C D E G A")
                    with gr.Row():
                        scale_table = gr.Dropdown([("ours (root-aware)", "ours"), ("paper's table", "paper")],
                                                  value="ours", label="Chord → scale table (Scale = from chords)")
                        scale_mode = gr.Dropdown([("scale + each chord's tones", "with_chords"),
                                                  ("scale only (strict)", "strict")],
                                                 value="with_chords", label="User scale")
                    steps = gr.Slider(*C.STEP_RANGE, value=10, step=1, label="Sampling steps")
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
                        dice = gr.Button("🎲 random", size="sm")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                cancel_btn = gr.Button("Cancel", variant="stop")
            with gr.Row():
                audio = gr.Audio(label="Audio", type="filepath", elem_id="audio-out")
                midi_out = gr.File(label="MIDI")
            roll_plot = gr.Plot(label="Piano roll")
            metrics = gr.JSON(label="Metrics of this sample")

        with gr.Tab("Compare"):
            gr.Markdown("Same condition (the Generate tab's chords, segment, melody, tempo, rhythm) and seed, "
                        "first 4 bars, two systems side by side.")
            with gr.Row():
                compare_model = gr.Dropdown(model_choices, value=controller.default_model, label="Model")
                system_a = gr.Dropdown(list(SYSTEMS), value="fgg", label="System A")
                system_b = gr.Dropdown(list(SYSTEMS), value="no_fgg", label="System B")
                compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
            with gr.Row():
                audio_a = gr.Audio(label="A", type="filepath", elem_id="audio-a")
                audio_b = gr.Audio(label="B", type="filepath", elem_id="audio-b")
            with gr.Row():
                plot_a = gr.Plot(label="A")
                plot_b = gr.Plot(label="B")
            diff_plot = gr.Plot(label="Which notes changed")
            compare_table = gr.DataFrame(label="Metrics", interactive=False)

        with gr.Tab("Evaluate"):
            if shown_run is None:
                gr.Markdown("No precomputed evaluation in `assets/eval/` yet: run one below or with "
                            "`python -m eval.run`.")
            else:
                gr.Markdown("Precomputed runs in `assets/eval/<model>/` (see `assets/eval/README.md` for the "
                            "commands). Pick the model whose run is shown.")
            eval_model = gr.Radio(list(eval_runs), value=shown_run, label="Model of the run shown", elem_id="eval-model")
            summary_table = gr.DataFrame(value=None if shown_run is None else eval_runs[shown_run][0].round(4),
                                         label="Summary", interactive=False)
            metric_choice = gr.Dropdown(METRIC_COLUMNS + ["diversity"], value="out_of_key_rate", label="Metric")
            metric_plot = gr.Plot(value=None if shown_run is None else metric_bar(eval_runs[shown_run][0], "out_of_key_rate"))
            heat_plot = gr.Plot(value=None if shown_run is None or eval_runs[shown_run][2] is None
                                else out_of_key_heatmap(eval_runs[shown_run][2]))
            gr.Markdown("**FGG strength trade-off** (`assets/eval/strength_curve.csv`, "
                        "`python -m eval.strength_curve`): strength 0 is the unguided sampler, 1 full FGG.")
            gr.Plot(value=None if strength_curve is None else curve_figure(strength_curve))
            with gr.Accordion("Run now", open=False):
                with gr.Row():
                    n_segments = gr.Slider(1, 200, value=5, step=1, label="Segments")
                    eval_seeds = gr.Slider(1, 5, value=1, step=1, label="Seeds")
                eval_systems = gr.CheckboxGroup(list(SYSTEMS), value=["fgg", "no_fgg", "ground_truth"], label="Systems")
                run_btn = gr.Button("Run evaluation")
                run_table = gr.DataFrame(label="New summary", interactive=False)
                run_files = gr.File(label="CSV", file_count="multiple")

        with gr.Tab("Listening test"):
            gr.Markdown(f"The blind listening test has a page of its own, with nothing else on it: "
                        f"[open the listening test]({LISTENING_PATH}).")
        with gr.Tab("Listening results (admin)"):
            build_admin_page(store)

        # ---------------------------------------------------------------- wiring

        gen_inputs = [chords, segment, melody_file, bars, tempo, fgg, strength, cfg, rhythm, scale, tonic,
                      custom_scale, steps, seed, model, scale_table, scale_mode]

        @user_errors
        def do_generate(chords, segment=NO_SEGMENT, melody_file=None, bars=4, tempo=90, fgg=True, strength=1.0,
                        cfg_scale=7.5, rhythm="none", scale="from chords", tonic="C", custom_scale=None, steps=10, seed=0,
                        model=controller.default_model, scale_table="ours", scale_mode="with_chords",
                        progress=gr.Progress()):
            return controller.generate(chords, segment, melody_file, bars, tempo, fgg, strength, cfg_scale, rhythm,
                                       scale, tonic, custom_scale, steps, seed, _progress_callback(progress),
                                       model, scale_table, scale_mode)

        gen_event = generate_btn.click(do_generate, gen_inputs, [audio, midi_out, roll_plot, metrics],
                                       api_name="generate", concurrency_limit=2)
        cancel_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")
        dice.click(lambda: random.randint(0, 2**31 - 1), None, seed, api_visibility="private")
        for button, text in zip(example_buttons, C.EXAMPLES.values()):
            button.click(lambda t=text: (t, NO_SEGMENT, NO_SEGMENT, "none"), None, [chords, segment, segment_picker, rhythm],
                         api_visibility="private")

        @user_errors
        def fill_from_segment(index):
            if index in (None, NO_SEGMENT):
                return NO_SEGMENT, gr.update(), gr.update(), "none"
            text, seg_tempo = controller.segment_fields(index)
            return index, text, seg_tempo, "from segment"

        segment_picker.input(fill_from_segment, segment_picker, [segment, chords, tempo, rhythm], api_visibility="private")

        @user_errors
        def do_compare(chords, segment=NO_SEGMENT, melody_file=None, tempo=90, rhythm="none", system_a="fgg",
                       system_b="no_fgg", seed=0, model=controller.default_model):
            return controller.compare(chords, segment, melody_file, tempo, rhythm, system_a, system_b, seed, model)

        compare_btn.click(do_compare, [chords, segment, melody_file, tempo, rhythm, system_a, system_b, seed,
                                       compare_model],
                          [audio_a, audio_b, plot_a, plot_b, diff_plot, compare_table], api_name="compare",
                          concurrency_limit=2)

        def metric_figure(name, metric):
            summary = eval_runs[name][0] if name in eval_runs else None
            return None if summary is None or metric not in summary else metric_bar(summary, metric)

        def show_run(name, metric):
            if name not in eval_runs:
                return None, None, None
            summary, _, heat = eval_runs[name]
            return summary.round(4), metric_figure(name, metric), None if heat is None else out_of_key_heatmap(heat)

        metric_choice.change(metric_figure, [eval_model, metric_choice], metric_plot, api_visibility="private")
        eval_model.change(show_run, [eval_model, metric_choice], [summary_table, metric_plot, heat_plot],
                          api_visibility="private")

        @user_errors
        def do_run_eval(n, systems, k, model_name, progress=gr.Progress()):
            result, per_sample_csv, summary_csv = C.run_eval_now(controller, n, systems, k,
                                                                 lambda d, t: progress((d, t), desc="evaluating"),
                                                                 model_name)
            return result.round(4), [per_sample_csv, summary_csv]

        run_btn.click(do_run_eval, [n_segments, eval_systems, eval_seeds, model], [run_table, run_files],
                      api_name="evaluate", concurrency_limit=1)

    # The participant's page: its own route, so the browser receives only its components
    # (Gradio sends each page just its own part of the config) — no system names from the
    # Compare/Evaluate tabs, nothing about the pool.
    with app.route("Listening test", LISTENING_PATH):
        build_participant_page(store)
    return app
