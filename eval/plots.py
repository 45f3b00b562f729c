"""Plotly figures of evaluation results (used by ``eval.run``'s report and the app's dashboard)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from eval.table import METRIC_INFO, PERCENT

INTERVAL_NAMES = ["1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7"]
HEADLINE = [
    "out_of_key_rate",
    "chord_accuracy",
    "chord_similarity",
    "chord_accuracy_labels",
    "groove_similarity",
    "note_density",
    "oa_pitch",
    "oa_duration",
    "oa_ioi",
]


def metric_bar(summary: pd.DataFrame, metric: str) -> go.Figure:
    """Mean of one metric per system with its 95 % CI as error bars, in the unit the tables use
    (``eval.table.METRIC_INFO``: rates as percentages, as ``eval.table.cell`` writes them)."""
    label, unit, _ = METRIC_INFO.get(metric, (metric.replace("_", " "), "", ""))
    scale = 100.0 if metric in PERCENT else 1.0
    ci = summary.get(f"{metric}_ci95")
    fig = go.Figure(
        go.Bar(
            x=summary["system"],
            y=summary[metric] * scale,
            error_y=dict(type="data", array=None if ci is None else ci.fillna(0) * scale),
            marker_color=["#d62728" if s == "fgg" else "#1f77b4" for s in summary["system"]],
            hovertemplate=f"%{{x}}: %{{y:.3g}} {unit}<extra></extra>",
        )
    )
    fig.update_layout(title=label, yaxis_title=unit, height=320, margin=dict(t=40, b=40))
    return fig


def metric_distribution(per_sample: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure(
        [go.Box(y=part[metric], name=system, boxmean=True) for system, part in per_sample.groupby("system", sort=False)]
    )
    fig.update_layout(
        title=f"{metric.replace('_', ' ')}: distribution per segment",
        height=340,
        margin=dict(t=40, b=40),
        showlegend=False,
    )
    return fig


def out_of_key_heatmap(heat: pd.DataFrame) -> go.Figure:
    table = heat.pivot(index="system", columns="interval", values="count").fillna(0)
    fig = go.Figure(
        go.Heatmap(
            z=table.values,
            x=[INTERVAL_NAMES[i] for i in table.columns],
            y=list(table.index),
            colorscale="Reds",
            colorbar=dict(title="out-of-key<br>sounding<br>steps (count)"),
            hovertemplate="%{y}, %{x}: %{z:.0f} out-of-key sounding steps<extra></extra>",
        )
    )
    fig.update_layout(
        title="Out-of-key sounding steps<br>by interval above the chord root",  # two lines: a phone's width
        height=380,
        xaxis_title="interval above chord root",
        margin=dict(t=70, b=40),
    )
    return fig


def write_report(out: Path, summary: pd.DataFrame, per_sample: pd.DataFrame, heat: pd.DataFrame) -> Path:
    """Self-contained HTML (plotly.js embedded once, so it opens offline)."""
    figures = [metric_bar(summary, m) for m in HEADLINE if m in summary]
    figures += [metric_distribution(per_sample, m) for m in ("out_of_key_rate", "chord_accuracy", "note_density")]
    figures.append(out_of_key_heatmap(heat))
    parts = [
        "<html><head><meta charset='utf-8'><title>FGG evaluation</title></head><body>",
        "<h1>FGG evaluation report</h1>",
        summary.round(4).to_html(index=False),
    ]
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
