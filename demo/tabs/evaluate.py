"""The Evaluate tab: the committed runs in words (names, units, definitions), the strength
curve, and a small "run now" evaluation that stops when its visitor leaves (the /evaluate API)."""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from demo import evaluation as E
from demo.controller import Controller
from demo.guard import PRIVATE, CheckboxGroup, Dropdown, Radio, Slider, user_error, validator
from demo.limits import PUBLIC_EVAL_SEGMENTS, Admission, client_of
from demo.tabs.compare import system_choices
from eval.plots import metric_bar, out_of_key_heatmap
from eval.steps_curve import steps_figure
from eval.strength_curve import curve_figure
from eval.table import METRIC_INFO, readable_summary
from fgg.checks import choice

Runs = dict[str, tuple[Any, Any, Any]]  # model -> (summary, per-sample, out-of-key heat) of its committed run


@dataclass(frozen=True)
class EvaluateTab:
    """The tab's components: the committed run shown, and the "run now" form."""

    eval_model: gr.Radio
    summary: gr.DataFrame
    metric: gr.Dropdown
    metric_help: gr.Markdown
    metric_plot: gr.Plot
    heat_plot: gr.Plot
    run_model: gr.Dropdown
    n_segments: gr.Slider
    systems: gr.CheckboxGroup
    run: gr.Button
    run_status: gr.Markdown
    run_table: gr.DataFrame
    run_files: gr.File


def build_evaluate_tab(app: gr.Blocks, controller: Controller, evaluation: Admission) -> EvaluateTab:
    """The tab, laid out and wired (inside ``app``)."""
    # Committed evaluation runs, one folder each (assets/eval/<run>/, a model's name or another
    # run of it), the default model's first.
    folders = sorted((p.parent.name for p in E.EVAL_DIR.glob("*/summary.csv")), key=lambda n: (n != "paper", n))
    runs: Runs = {name: E.load_eval_results(E.EVAL_DIR / name) for name in folders}
    with gr.Tab("Evaluate"):
        shown = _committed_runs(runs)
        with gr.Accordion("Run a small evaluation now", open=False):
            form = _run_form(controller)
    tab = EvaluateTab(**shown, **form)
    _wire_committed_runs(app, tab, runs)
    _wire_run_now(tab, controller, evaluation)
    return tab


def _committed_runs(runs: Runs) -> dict[str, Any]:
    shown_run = next(iter(runs), None)
    strength_curve, steps_curve = E.load_curve(E.STRENGTH_CURVE_FILE), E.load_curve(E.STEPS_CURVE_FILE)
    if shown_run is None:
        gr.Markdown("No precomputed evaluation in `assets/eval/` yet: run one below or with `python -m eval.run`.")
    else:
        gr.Markdown(
            "Precomputed evaluations of each model on POP909 validation segments (mean ± 95 % CI; "
            "`assets/eval/README.md` has the commands). Definitions: `eval/METRICS.md`."
        )
    eval_model = Radio(
        list(runs),
        value=shown_run,
        label="Run shown",
        elem_id="eval-model",
        info="each shipped model's committed run (paper-table: paper guided by the paper's chord table)",
    )
    summary = gr.DataFrame(
        value=None if shown_run is None else readable_summary(runs[shown_run][0]),
        label="Summary",
        interactive=False,
        elem_id="eval-summary",
    )
    metric = Dropdown(
        [(f"{label} ({unit})", key) for key, (label, unit, _) in METRIC_INFO.items()],
        value="out_of_key_rate",
        label="Metric",
        elem_id="eval-metric",
        info="mean per system with its 95 % confidence interval",
    )
    metric_help = gr.Markdown(elem_id="eval-metric-help")
    metric_plot = gr.Plot(show_label=False, elem_id="eval-metric-plot")
    heat = None if shown_run is None else runs[shown_run][2]
    heat_plot = gr.Plot(value=None if heat is None else out_of_key_heatmap(heat), show_label=False)
    gr.Markdown(
        "Each cell counts the sounding steps of a system's out-of-key notes, by the note's interval above "
        "the chord's root (over the whole run): a row of blanks is a system that plays none."
    )
    gr.Markdown(
        "**FGG strength trade-off** (`assets/eval/strength_curve.csv`, "
        "`python -m eval.strength_curve`): strength 0 is the unguided sampler, 1 full FGG; solid lines "
        "with the rhythm forced at every step, dashed with the rhythm only as a condition."
    )
    gr.Plot(value=None if strength_curve is None else curve_figure(strength_curve), show_label=False)
    if steps_curve is not None:
        gr.Markdown(
            "**Fewer steps** (`assets/eval/steps_curve.csv`, `python -m eval.steps_curve`): FGG with "
            "DPM-Solver++(2M) in 4–8 steps against the paper's 10 DDIM steps, per segment (0 = no change)."
        )
        gr.Plot(value=steps_figure(steps_curve), show_label=False)
    return {
        "eval_model": eval_model,
        "summary": summary,
        "metric": metric,
        "metric_help": metric_help,
        "metric_plot": metric_plot,
        "heat_plot": heat_plot,
    }


def _run_form(controller: Controller) -> dict[str, Any]:
    gr.Markdown(
        f"At most {PUBLIC_EVAL_SEGMENTS} segments × 1 seed here; it stops if you leave the "
        "page. Full runs: `python -m eval.run`."
    )
    run_model = Dropdown(
        controller.model_choices(),
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
    systems = CheckboxGroup(
        system_choices(),
        value=["fgg", "no_fgg", "ground_truth"],
        label="Systems",
        info="each is scored against the human accompaniment",
    )
    return {
        "run_model": run_model,
        "n_segments": n_segments,
        "systems": systems,
        "run": gr.Button("Run evaluation"),
        "run_status": gr.Markdown(label="Status", elem_id="run-status"),
        "run_table": gr.DataFrame(label="New summary", interactive=False),
        "run_files": gr.File(label="CSV", file_count="multiple"),
    }


def _wire_committed_runs(app: gr.Blocks, tab: EvaluateTab, runs: Runs) -> None:
    """The run and the metric shown follow the radio and the dropdown."""

    def metric_view(name, metric) -> dict:
        summary = runs[name][0] if name in runs else None
        label, unit, definition = METRIC_INFO.get(metric, (str(metric), "", ""))
        if summary is None or metric not in summary or summary[metric].isna().all():
            return {tab.metric_plot: None, tab.metric_help: f"**{label}**: not computed in this run. {definition}"}
        reading = "Bars: each system's mean; whiskers: its 95 % confidence interval; FGG in red."
        return {
            tab.metric_plot: metric_bar(summary, metric),
            tab.metric_help: f"**{label}** ({unit}): {definition} {reading}",
        }

    def show_run(name, metric) -> dict:
        if name not in runs:
            return {tab.summary: None, tab.metric_plot: None, tab.metric_help: "", tab.heat_plot: None}
        summary, _, heat = runs[name]
        return metric_view(name, metric) | {
            tab.summary: readable_summary(summary),
            tab.heat_plot: None if heat is None else out_of_key_heatmap(heat),
        }

    shown = [tab.eval_model, tab.metric]
    tab.metric.change(metric_view, shown, [tab.metric_plot, tab.metric_help], **PRIVATE)
    tab.eval_model.change(show_run, shown, [tab.summary, tab.metric_plot, tab.metric_help, tab.heat_plot], **PRIVATE)
    app.load(metric_view, shown, [tab.metric_plot, tab.metric_help], **PRIVATE)


def _wire_run_now(tab: EvaluateTab, controller: Controller, evaluation: Admission) -> None:
    """The /evaluate endpoint: a small run in a thread of its own, cancelled when its visitor leaves."""

    def do_run_eval(n_segments, systems, model_name, request: gr.Request | None = None, progress=gr.Progress()):
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
                    yield gr.skip()
            if "error" in box:
                if isinstance(box["error"], ValueError):
                    raise user_error("/evaluate", box["error"])
                raise box["error"]
            summary, per_sample_csv, summary_csv = box["result"]
            yield {
                tab.run_table: readable_summary(summary),
                tab.run_files: [per_sample_csv, summary_csv],
                tab.run_status: f"✓ {int(summary['n'].max())} segments",
            }
        finally:  # closing may run on the server's event loop: signal the worker, never wait for it here
            cancel.set()

    def check(values: dict[str, Any]) -> None:
        """``E.eval_request``'s checks, the model's under this endpoint's name for it."""
        model = choice(values["model_name"] or controller.default_model, list(controller.generators), "model_name")
        E.eval_request(controller, values["n_segments"], values["systems"], model)

    tab.run.click(
        do_run_eval,
        [tab.n_segments, tab.systems, tab.run_model],
        [tab.run_table, tab.run_files, tab.run_status],
        api_name="evaluate",
        concurrency_id="evaluate",
        concurrency_limit=1,
        show_progress_on=[tab.run_status],
        validator=validator("/evaluate", ("n_segments", "systems", "model_name"), check, evaluation),
    )
