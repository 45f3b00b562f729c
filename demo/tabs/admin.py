"""The listening test's admin page: results, plots and export behind ``FGG_ADMIN_PASSWORD``
(``AdminGate``). Layout and wiring only; the numbers are ``demo.listening.stats`` and the
plots ``demo.listening.figures``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.components import Component

from demo.limits import client_of
from demo.listening import AdminGate, ListeningStore
from demo.listening.figures import results_view
from demo.workspace import Workspace


@dataclass(frozen=True)
class AdminPage:
    """The page's components, by name."""

    password: gr.Textbox
    show_button: gr.Button
    summary: gr.Markdown
    ratings_plot: gr.Plot
    preference_plot: gr.Plot
    time_plot: gr.Plot
    systems_table: gr.DataFrame
    tests_table: gr.DataFrame
    export_csv: gr.File  # listening-results-<UTC date>.csv
    export_json: gr.File

    @property
    def results(self) -> list[Component]:
        """Everything ``Show results`` fills in (and clears on a refused password)."""
        return [
            self.summary,
            self.ratings_plot,
            self.preference_plot,
            self.time_plot,
            self.systems_table,
            self.tests_table,
            self.export_csv,
            self.export_json,
        ]


def admin_layout(storage_warning: str | None) -> AdminPage:
    """The page's components, inside the current ``gr.Blocks``/``gr.Tab``."""
    gr.Markdown(
        "Results of the listening test (needs `FGG_ADMIN_PASSWORD` on the server)."
        + (f"\n\n⚠️ **Storage:** {storage_warning}." if storage_warning else "")
    )
    return AdminPage(
        password=gr.Textbox(label="Admin password", type="password", elem_id="admin-password"),
        show_button=gr.Button("Show results", elem_id="admin-show"),
        summary=gr.Markdown(),
        ratings_plot=gr.Plot(label="Ratings"),
        preference_plot=gr.Plot(label="Preferences"),
        time_plot=gr.Plot(label="Answers over time"),
        systems_table=gr.DataFrame(label="Ratings per system (mean, 95 % CI)", interactive=False),
        tests_table=gr.DataFrame(label="FGG vs each baseline (sign test, Wilcoxon)", interactive=False),
        export_csv=gr.File(label="Answers (CSV, formula-safe)", elem_id="admin-export-csv"),
        export_json=gr.File(label="Answers (JSON)", elem_id="admin-export-json"),
    )


def export_files(store: ListeningStore, folder: Path) -> tuple[Path, Path]:
    """The answers as ``listening-results-<UTC date>.csv`` and ``.json`` in ``folder``."""
    stem = f"listening-results-{datetime.now(UTC):%Y-%m-%d}"
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    csv_path.write_text(store.export_csv(), encoding="utf-8")
    json_path.write_text(store.export_json(), encoding="utf-8")
    return csv_path, json_path


def results_update(page: AdminPage, store: ListeningStore, workspace: Workspace) -> dict:
    """Updates for ``page.results``: the summary, the plots, the tables and the export files."""
    answers = store.answers()
    result = store.results(answers)
    csv_path, json_path = export_files(store, workspace.new("export-"))
    view = results_view(result, answers)
    return {
        page.summary: view.summary,
        page.ratings_plot: view.ratings,
        page.preference_plot: view.preferences,
        page.time_plot: view.over_time,
        page.systems_table: pd.DataFrame(result["systems"]).round(3),
        page.tests_table: pd.DataFrame(result["preference"]).round(4),
        page.export_csv: str(csv_path),
        page.export_json: str(json_path),
    }


def build_admin_page(store: ListeningStore, gate: AdminGate | None = None) -> None:
    """Results, plots and export behind ``FGG_ADMIN_PASSWORD`` (``AdminGate``)."""
    admin_gate = gate or AdminGate()
    workspace = Workspace()  # the export files, removed with the process's folder
    page = admin_layout(store.warning)

    def show(password: str, request: gr.Request) -> dict:
        try:
            admin_gate.check(password, client_of(request))
        except PermissionError as err:  # said on the page (these events skip the queue, which carries toasts)
            return {component: None for component in page.results} | {page.summary: f"⚠️ {err}"}
        return results_update(page, store, workspace)

    page.show_button.click(show, page.password, page.results, queue=False, api_visibility="private")
