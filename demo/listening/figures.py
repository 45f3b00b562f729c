"""The results as plotly figures: what the admin page shows and ``results --html`` writes."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from demo.listening.schema import CRITERIA


@dataclass(frozen=True)
class ResultsView:
    """The admin's summary line and figures; a figure is None when there is nothing to plot."""

    summary: str
    ratings: go.Figure | None
    preferences: go.Figure | None
    over_time: go.Figure | None

    def figures(self) -> list[go.Figure]:
        return [f for f in (self.ratings, self.preferences, self.over_time) if f is not None]


def rating_figure(systems: pd.DataFrame) -> go.Figure:
    """Per-system mean rating with 95 % CI, one group of bars per criterion."""
    fig = go.Figure()
    for _, row in systems.iterrows():
        fig.add_bar(
            name=f"{row['system']} (n = {row['answers']})",
            x=list(CRITERIA),
            y=[row[c] for c in CRITERIA],
            error_y=dict(type="data", array=[row[f"{c}_ci95"] for c in CRITERIA]),
        )
    fig.update_layout(
        barmode="group",
        yaxis=dict(range=[0, 5.2], title="mean rating (1-5) ± 95 % CI"),
        title="Ratings per system",
        height=380,
        margin=dict(t=50, b=40),
    )
    return fig


def preference_figure(tests: pd.DataFrame) -> go.Figure:
    """For each baseline: share of answers preferring FGG, the baseline, or neither."""
    fig = go.Figure()
    for column, name in (("fgg_preferred", "FGG"), ("same", "same"), ("baseline_preferred", "baseline")):
        share = tests[column] / tests["answers"].clip(lower=1)
        fig.add_bar(
            name=name,
            y=[f"vs {b} (n = {n})" for b, n in zip(tests["baseline"], tests["answers"], strict=True)],
            x=share,
            orientation="h",
        )
    fig.update_layout(
        barmode="stack",
        xaxis=dict(range=[0, 1], tickformat=".0%", title="share of answers"),
        title="Preferences per pair type",
        height=300,
        margin=dict(t=50, b=40),
    )
    return fig


def answers_over_time_figure(answers: list[dict]) -> go.Figure:
    """Cumulative answers over time (UTC)."""
    times = sorted(a["submitted_at"] for a in answers)
    fig = go.Figure(go.Scatter(x=times, y=list(range(1, len(times) + 1)), mode="lines+markers", name="answers"))
    fig.update_layout(
        title="Answers over time (UTC)", yaxis_title="answers so far", height=300, margin=dict(t=50, b=40)
    )
    return fig


def results_view(result: dict, answers: list[dict]) -> ResultsView:
    """The admin's summary line and figures (ratings, preferences, answers over time) from
    ``stats.summarize`` and ``answers``."""
    systems, tests = pd.DataFrame(result["systems"]), pd.DataFrame(result["preference"])
    counts = result["raters"]
    first = min((a["submitted_at"] for a in answers), default="–")
    last = max((a["submitted_at"] for a in answers), default="–")
    summary = (
        f"**{counts['answers']} answers from {counts['raters']} raters**, {first} → {last} (UTC); "
        f"{counts['flagged_raters']} rater(s) failed the attention check and are left out, "
        f"{counts['answers_used']} answers used."
    )
    return ResultsView(
        summary=summary,
        ratings=rating_figure(systems) if len(systems) else None,
        preferences=preference_figure(tests) if len(tests) else None,
        over_time=answers_over_time_figure(answers) if answers else None,
    )


def results_html(view: ResultsView) -> str:
    """A standalone HTML page of the summary and figures (plotly.js included once)."""
    parts = [f"<p>{view.summary}</p>"] + [
        f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(view.figures())
    ]
    return "<html><body>" + "\n".join(parts) + "</body></html>"
