"""The Evaluate tab: the committed runs in words (names, units, definitions), the strength
curve, and a small "run now" evaluation that stops when its visitor leaves."""

from __future__ import annotations

import contextvars
import threading

import gradio as gr

from demo import controller as C
from demo import evaluation as E
from demo.guard import PRIVATE, CheckboxGroup, Dropdown, Radio, Slider, user_error, validator
from demo.limits import PUBLIC_EVAL_SEGMENTS, Admission, client_of
from eval.baselines import SYSTEMS
from eval.plots import metric_bar, out_of_key_heatmap
from eval.strength_curve import curve_figure
from eval.table import METRIC_INFO, readable_summary


def build_evaluate_tab(app: gr.Blocks, controller: C.Controller, model_choices, evaluation: Admission) -> None:
    """Layout and wiring, inside the current ``gr.Tab``."""
    # Committed evaluation runs, one folder each (assets/eval/<model>/), the default model's first.
    folders = sorted((p.parent.name for p in E.EVAL_DIR.glob("*/summary.csv")), key=lambda n: (n != "paper", n))
    eval_runs = {name: E.load_eval_results(E.EVAL_DIR / name) for name in folders}
    shown_run = next(iter(eval_runs), None)
    strength_curve = E.load_strength_curve()
    metric_choices = [(f"{label} ({unit})", key) for key, (label, unit, _) in METRIC_INFO.items()]
    private = PRIVATE

    if shown_run is None:
        gr.Markdown("No precomputed evaluation in `assets/eval/` yet: run one below or with `python -m eval.run`.")
    else:
        gr.Markdown(
            "Precomputed evaluations of each model on POP909 validation segments (mean ± 95 % CI; "
            "`assets/eval/README.md` has the commands). Definitions: `eval/METRICS.md`."
        )
    eval_model = Radio(
        list(eval_runs),
        value=shown_run,
        label="Model of the run shown",
        elem_id="eval-model",
        info="each shipped model has its own committed run",
    )
    summary_table = gr.DataFrame(
        value=None if shown_run is None else readable_summary(eval_runs[shown_run][0]),
        label="Summary",
        interactive=False,
        elem_id="eval-summary",
    )
    metric_choice = Dropdown(
        metric_choices,
        value="out_of_key_rate",
        label="Metric",
        elem_id="eval-metric",
        info="mean per system with its 95 % confidence interval",
    )
    metric_help = gr.Markdown(elem_id="eval-metric-help")
    metric_plot = gr.Plot(show_label=False)
    heat_plot = gr.Plot(
        value=None
        if shown_run is None or eval_runs[shown_run][2] is None
        else out_of_key_heatmap(eval_runs[shown_run][2]),
        show_label=False,
    )
    gr.Markdown(
        "**FGG strength trade-off** (`assets/eval/strength_curve.csv`, "
        "`python -m eval.strength_curve`): strength 0 is the unguided sampler, 1 full FGG."
    )
    gr.Plot(value=None if strength_curve is None else curve_figure(strength_curve), show_label=False)
    with gr.Accordion("Run a small evaluation now", open=False):
        gr.Markdown(
            f"At most {PUBLIC_EVAL_SEGMENTS} segments × 1 seed here; it stops if you leave the "
            "page. Full runs: `python -m eval.run`."
        )
        run_model = Dropdown(
            model_choices,
            value=controller.default_model,
            label="Model",
            info="the served model to evaluate (one that writes the melody: fgg, no_fgg and ground truth, "
            "from the chords alone)",
        )
        n_segments = Slider(
            1,
            PUBLIC_EVAL_SEGMENTS,
            value=5,
            step=1,
            label="Segments",
            info="validation segments, evenly spread over the 1,709",
        )
        eval_systems = CheckboxGroup(
            [(f"{s} — {C.SYSTEM_HELP[s]}", s) for s in SYSTEMS],
            value=["fgg", "no_fgg", "ground_truth"],
            label="Systems",
            info="each is scored against the human accompaniment",
        )
        run_btn = gr.Button("Run evaluation")
        run_status = gr.Markdown(elem_id="run-status")
        run_table = gr.DataFrame(label="New summary", interactive=False)
        run_files = gr.File(label="CSV", file_count="multiple")

    def metric_view(name, metric):
        summary = eval_runs[name][0] if name in eval_runs else None
        label, unit, definition = METRIC_INFO.get(metric, (str(metric), "", ""))
        if summary is None or metric not in summary or summary[metric].isna().all():
            return None, f"**{label}**: not computed in this run. {definition}"
        figure = metric_bar(summary, metric)
        figure.update_layout(title=label, yaxis_title=unit)
        return figure, f"**{label}** ({unit}): {definition}"

    def show_run(name, metric):
        if name not in eval_runs:
            return None, None, None, ""
        summary, _, heat = eval_runs[name]
        return (
            readable_summary(summary),
            *metric_view(name, metric),
            None if heat is None else out_of_key_heatmap(heat),
        )

    metric_choice.change(metric_view, [eval_model, metric_choice], [metric_plot, metric_help], **private)
    eval_model.change(
        show_run, [eval_model, metric_choice], [summary_table, metric_plot, metric_help, heat_plot], **private
    )
    app.load(metric_view, [eval_model, metric_choice], [metric_plot, metric_help], **private)

    def do_run_eval(n_segments, systems, model_name, request: gr.Request = None, progress=gr.Progress()):
        """Runs in a thread of its own; Gradio closes this generator when the visitor leaves
        (or the queue drops the job), and closing it cancels the run after its current batch."""
        cancel, box = threading.Event(), {}

        def work():
            try:
                box["result"] = E.run_eval_now(
                    controller,
                    n_segments,
                    systems,
                    cancel=cancel,
                    model=model_name,
                    progress=lambda d, t: progress((d, t), desc="evaluating"),
                )
            except Exception as err:  # handed to the request's thread below
                box["error"] = err
            finally:  # the place is given back once the work has really stopped
                evaluation.release(client_of(request))

        worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.5)
                if worker.is_alive():
                    yield gr.skip(), gr.skip(), gr.skip()
            if "error" in box:
                if isinstance(box["error"], ValueError):
                    raise user_error("/evaluate", box["error"])
                raise box["error"]
            summary, per_sample_csv, summary_csv = box["result"]
            yield readable_summary(summary), [per_sample_csv, summary_csv], f"✓ {int(summary['n'].max())} segments"
        finally:  # closing may run on the server's event loop: signal the worker, never wait for it here
            cancel.set()

    def check_eval(n_segments, systems, model_name):
        E.eval_request(controller, n_segments, systems, model_name)

    run_btn.click(
        do_run_eval,
        [n_segments, eval_systems, run_model],
        [run_table, run_files, run_status],
        api_name="evaluate",
        concurrency_id="evaluate",
        concurrency_limit=1,
        show_progress_on=[run_status],
        validator=validator("/evaluate", ("n_segments", "systems", "model_name"), check_eval, evaluation),
    )
