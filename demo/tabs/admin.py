"""The listening studies' admin page: every study's progress, one study's analysis (plots and
tables) and its answers as files, behind ``FGG_ADMIN_PASSWORD`` (``AdminGate``). Layout and
wiring only; the numbers are ``demo.listening.analysis``, the plots ``demo.listening.report``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.components import Component

from demo.limits import client_of
from demo.listening import AdminGate, ListeningStore, StudyStore
from demo.listening.export import answers_csv, answers_json
from demo.listening.report import analysis_figures
from demo.listening.tidy import export_rows
from demo.workspace import Workspace

PAGE_BOOTSTRAP = 300  # replicates behind the page's CIs (a Bradley-Terry fit each); the CLI's: 2000
PLOTS = {  # analysis_figures' names, and how the page labels them
    "mos": "Mean opinion scores",
    "normalised": "Per-rater normalised scores",
    "bradley_terry": "Preferences (Bradley-Terry)",
    "controls": "Hidden reference and anchor",
    "over_time": "Answers over time",
}


@dataclass(frozen=True)
class AdminPage:
    """The page's components, by name."""

    password: gr.Textbox
    study: gr.Dropdown
    show_button: gr.Button
    progress: gr.DataFrame  # every study: raters, answers, coverage
    summary: gr.Markdown
    plots: dict[str, gr.Plot]  # by ``analysis_figures`` name
    pairwise_table: gr.DataFrame
    export_csv: gr.File  # listening-results-<study>-<UTC date>.csv
    export_json: gr.File

    @property
    def results(self) -> list[Component]:
        """Everything ``Show results`` fills in (and clears on a refused password)."""
        files = [self.export_csv, self.export_json]
        return [self.progress, self.summary, *self.plots.values(), self.pairwise_table, *files]


def admin_layout(store: ListeningStore) -> AdminPage:
    """The page's components, inside the current ``gr.Blocks``/route."""
    gr.Markdown(
        "Results of the listening studies (needs `FGG_ADMIN_PASSWORD` on the server)."
        + (f"\n\n⚠️ **Storage:** {store.warning}." if store.warning else "")
    )
    studies = list(store.studies)
    with gr.Row():
        password = gr.Textbox(label="Admin password", type="password", elem_id="admin-password")
        study = gr.Dropdown(studies, value=studies[0] if studies else None, label="Study", elem_id="admin-study")
    return AdminPage(
        password=password,
        study=study,
        show_button=gr.Button("Show results", elem_id="admin-show"),
        progress=gr.DataFrame(label="Studies: progress", interactive=False, elem_id="admin-progress"),
        summary=gr.Markdown(elem_id="admin-summary"),
        plots={name: gr.Plot(label=label, visible=False) for name, label in PLOTS.items()},
        pairwise_table=gr.DataFrame(label="Pairwise tests (Holm-corrected p)", interactive=False),
        export_csv=gr.File(label="Answers, one row per rating (CSV, formula-safe)", elem_id="admin-export-csv"),
        export_json=gr.File(label="Answers, one row per rating (JSON)", elem_id="admin-export-json"),
    )


def export_files(store: StudyStore, frames: tuple[pd.DataFrame, pd.DataFrame], folder: Path) -> tuple[Path, Path]:
    """The study's answers (``frames``: ``store.frames()``) as ``listening-results-<study>-<UTC
    date>.csv`` and ``.json``."""
    rows = export_rows(store.study, *frames)
    stem = f"listening-results-{store.id}-{datetime.now(UTC):%Y-%m-%d}"
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    csv_path.write_text(answers_csv(rows), encoding="utf-8")
    json_path.write_text(answers_json(rows), encoding="utf-8")
    return csv_path, json_path


def summary_text(result: dict) -> str:
    """The counts and the power lines, in sentences."""
    counts = result["counts"]
    lines = [
        f"**{result['title']}** (`{result['study']}`, config {result['config_hash']}): "
        f"{counts['raters']} raters, {counts['flagged_raters']} left out for a failed attention check; "
        f"{counts['items_used']} screens used."
    ]
    if result["message"]:
        lines.append(result["message"])
    lines += [f"- {power['sentence']}" for power in result["power"]]
    return "\n".join(lines)


def results_update(page: AdminPage, store: ListeningStore, study_id: str, workspace: Workspace) -> dict:
    """Updates for ``page.results``: every study's progress, then the chosen study's analysis."""
    progress = pd.DataFrame([study.progress() for study in store.studies.values()])
    if study_id not in store.studies:
        return {component: None for component in page.results} | {page.progress: progress}
    study = store.study(study_id)
    frames = study.frames()  # read once, for the analysis and the export
    result = study.results(PAGE_BOOTSTRAP, frames)
    figures = analysis_figures(result)
    csv_path, json_path = export_files(study, frames, workspace.new("export-"))
    return {
        page.progress: progress,
        page.summary: summary_text(result),
        **{plot: gr.update(value=figures.get(name), visible=name in figures) for name, plot in page.plots.items()},
        page.pairwise_table: pd.DataFrame(result["pairwise"]).round(4),
        page.export_csv: str(csv_path),
        page.export_json: str(json_path),
    }


def build_admin_page(store: ListeningStore, gate: AdminGate | None = None) -> None:
    """Progress, results, plots and export behind ``FGG_ADMIN_PASSWORD`` (``AdminGate``)."""
    admin_gate = gate or AdminGate()
    workspace = Workspace()  # the export files, removed with the process's folder
    page = admin_layout(store)

    def show(password: str, study_id: str, request: gr.Request) -> dict:
        try:
            admin_gate.check(password, client_of(request))
        except PermissionError as err:  # said on the page (these events skip the queue, which carries toasts)
            return {component: None for component in page.results} | {page.summary: f"⚠️ {err}"}
        return results_update(page, store, study_id, workspace)

    page.show_button.click(show, [page.password, page.study], page.results, queue=False, api_visibility="private")
