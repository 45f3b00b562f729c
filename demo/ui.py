"""The Gradio Blocks: Generate, Compare, Evaluate, and on pages of their own, which no page
links to, the listening test (``/listen``) and its results (``/admin``, behind a password).
Assembly only: each tab is a module of ``demo.tabs``, the work is in ``demo.controller`` (and
``demo.listening`` for the test).

A public Space is hostile ground: every queued endpoint is validated and admitted when a
request joins the queue (``demo.guard``). Generation, evaluation and the listening test have
separate concurrency groups (the listening test skips the queue), so none waits behind another.
"""

from __future__ import annotations

import gradio as gr

from demo import serving
from demo.controller import Controller
from demo.figures import before_after_figure
from demo.how_it_works import load_example
from demo.limits import Admission
from demo.listening import ListeningStore, StudyStore
from demo.serving import DELETE_CACHE
from demo.tabs.admin import build_admin_page
from demo.tabs.compare import build_compare_tab, wire_compare_tab
from demo.tabs.evaluate import build_evaluate_tab
from demo.tabs.generate import build_generate_tab, wire_generate_tab
from demo.tabs.listen import build_participant_page

__all__ = ["ADMIN_PATH", "LISTENING_PATH", "build_app", "launch"]

LISTENING_PATH = "/listen"
DEFAULT_STUDY = "fgg-vs-baselines"  # the study at /listen
ADMIN_PATH = "/admin"
# A dropdown's text ends (…) before its arrow instead of running under it. On a phone: a
# rating's five options on one line (they wrapped "5" alone onto a second).
CSS = """
.secondary-wrap input { padding-right: 32px; text-overflow: ellipsis; }
@media (max-width: 480px) {
  .one-line-scale .wrap { flex-wrap: nowrap; gap: 4px; }
  .one-line-scale .wrap label { min-width: 0; flex: 1 1 0; padding: 6px 4px; justify-content: center; }
}
"""
HOW_IT_WORKS = """**How it works.** A diffusion model turns noise into a 4-bar piano accompaniment for your chords
(and melody), in 10 denoising steps. At every step, *fine-grained guidance* (FGG) edits the model's
current guess so that no note outside the scale allowed by the chord survives — so the result has no
out-of-key notes (red below), at no extra cost."""


def build_app(
    controller: Controller,
    store: ListeningStore | None = None,
    generation: Admission | None = None,
    evaluation: Admission | None = None,
) -> gr.Blocks:
    """``generation``/``evaluation``: how many requests each endpoint holds, in all and per
    visitor (defaults: 16 and 2 for generate + compare, 2 and 1 for evaluate)."""
    store = store or ListeningStore()
    generation = generation or Admission("generation", total=16, per_client=2)
    evaluation = evaluation or Admission("evaluation", total=2, per_client=1)
    with gr.Blocks(title="FGG Music", delete_cache=DELETE_CACHE) as app:
        # No page links to another (participants and admins apart): each page's navbar lists
        # no page (the main page unnamed, the others not shown); visible=False is ignored.
        gr.Navbar(main_page_name=False)
        _header()
        # On a phone the tab names wrap onto a second line rather than fold into a "⋯" menu.
        with gr.Tabs(overflow_behavior="wrap"):
            generate = build_generate_tab(controller)
            compare = build_compare_tab()
            build_evaluate_tab(app, controller, evaluation)
            with gr.Tab("Listen"):
                gr.Markdown(
                    f"The blind listening test has a page of its own, with nothing else on it: "
                    f"[open the listening test]({LISTENING_PATH})."
                )
        # Wired once everything is laid out: the wiring makes components of its own (state),
        # and the layout's ids (part of the API's description) must not move.
        wire_generate_tab(generate, controller, generation)
        wire_compare_tab(compare, generate, controller, generation)

    # Each open study's participant page: a route of its own, so the browser receives only its
    # components (Gradio sends each page just its own part of the config) — no system names
    # from the Compare/Evaluate tabs, nothing of another study. The default study is at /listen.
    for n, (path, study) in enumerate(listening_routes(store).items(), start=1):
        with app.route(f"Listening test {n}", path, show_in_navbar=False):  # a name that names no system
            gr.Navbar(main_page_name=False)
            build_participant_page(study)
    # The researcher's page, behind its password (FGG_ADMIN_PASSWORD); no link leads to it.
    with app.route("Listening results", ADMIN_PATH, show_in_navbar=False):
        gr.Navbar(main_page_name=False)
        build_admin_page(store)
    return app


def listening_routes(store: ListeningStore) -> dict[str, StudyStore]:
    """Where each open study is served: ``DEFAULT_STUDY`` (or the first open one) at
    ``/listen``, every other at ``/listen-<id>`` (a Gradio route is one path segment)."""
    open_studies = [s for s in store.studies.values() if s.study.open]
    default = next((s for s in open_studies if s.id == DEFAULT_STUDY), open_studies[0] if open_studies else None)
    return {LISTENING_PATH if s is default else f"{LISTENING_PATH}-{s.id}": s for s in open_studies}


def launch(app: gr.Blocks, layout=None, **kwargs):
    """``demo.serving.launch`` with the page's CSS."""
    return serving.launch(app, layout, css=CSS, **kwargs)


def _header() -> None:
    """The title, and "How it works" with the committed FGG off/on example."""
    example = load_example()
    gr.Markdown("# FGG Music\nPiano for your chords, by diffusion with *fine-grained guidance* (ICML 2025).")
    with gr.Accordion("How it works", open=False), gr.Row():
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
