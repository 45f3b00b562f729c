"""An analysis (``analysis.analyse``) as plotly figures and as one self-contained HTML page that
opens offline (plotly.js embedded once)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

SCORE_AXIS = "mean score (rating-scale points)"
Z_AXIS = "mean z-score (rater SDs)"
STRENGTH_AXIS = "strength (log-odds vs average system)"
CI_NOTE = "± 95 % CI (rater bootstrap)"
LAYOUT: dict[str, Any] = dict(height=380, margin=dict(t=70, b=50, l=60, r=20), legend=dict(orientation="h", y=-0.2))


def _errors(rows: Sequence[dict]) -> dict[str, Any]:
    """Asymmetric error bars from mean / strength to ci_low and ci_high (None where unknown)."""

    def gap(a: Any, b: Any) -> float | None:
        return None if a is None or b is None else abs(a - b)

    centre = [r.get("mean", r.get("strength")) for r in rows]
    return dict(
        type="data",
        symmetric=False,
        array=[gap(r["ci_high"], c) for r, c in zip(rows, centre, strict=True)],
        arrayminus=[gap(c, r["ci_low"]) for r, c in zip(rows, centre, strict=True)],
    )


def score_figure(per_criterion: dict[str, list[dict]], title: str, axis: str) -> go.Figure:
    """One group of bars per criterion, one colour per system, error bars to the CI."""
    fig = go.Figure()
    systems = list(dict.fromkeys(r["system"] for rows in per_criterion.values() for r in rows))
    for system in systems:
        rows = {c: next((r for r in rs if r["system"] == system), None) for c, rs in per_criterion.items()}
        found = [(c, r) for c, r in rows.items() if r is not None]
        fig.add_bar(
            name=system,
            x=[c for c, _ in found],
            y=[r["mean"] for _, r in found],
            error_y=_errors([r for _, r in found]),
            customdata=[[r["n"], r["raters"]] for _, r in found],
            hovertemplate=f"{system}<br>%{{x}}: %{{y:.2f}}<br>n = %{{customdata[0]}} from %{{customdata[1]}} raters",
        )
    fig.update_layout(barmode="group", title=title, xaxis_title="criterion", yaxis_title=axis, **LAYOUT)
    return fig


def strength_figure(rows: list[dict]) -> go.Figure:
    """Bradley–Terry strengths with their CIs, strongest first."""
    fig = go.Figure(
        go.Scatter(
            x=[r["system"] for r in rows],
            y=[r["strength"] for r in rows],
            error_y=_errors(rows),
            mode="markers",
            marker=dict(size=11),
            customdata=[[r["p_beats_average"], r["chosen"], r["shown"]] for r in rows],
            hovertemplate="%{x}: %{y:.2f}<br>P(beats average) = %{customdata[0]:.2f}"
            "<br>chosen %{customdata[1]} of %{customdata[2]} shown<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Preferences: Bradley–Terry<br>{CI_NOTE}", xaxis_title="system", **LAYOUT)
    fig.update_layout(yaxis_title=STRENGTH_AXIS)
    return fig


def _p(value: Any) -> str:
    return "–" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


PAIRWISE_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("criterion", "criterion", _text),
    ("system_a", "a", _text),
    ("system_b", "b", _text),
    ("test", "test", _text),
    ("n", "n", _number),
    ("mean_diff", "mean a − b (points)", _number),
    ("wins", "a better", _number),
    ("losses", "b better", _number),
    ("ties", "same", _number),
    ("p", "p", _p),
    ("p_holm", "p (Holm)", _p),
    ("significant", "significant at 0.05", _number),
]


def pairwise_figure(rows: list[dict]) -> go.Figure:
    """The pairwise tests as a table figure (what the admin page can show)."""
    cells = [[fmt(r[key]) for r in rows] for key, _, fmt in PAIRWISE_COLUMNS]
    fig = go.Figure(go.Table(header=dict(values=[h for _, h, _ in PAIRWISE_COLUMNS]), cells=dict(values=cells)))
    fig.update_layout(title="Pairwise tests<br>(Holm-adjusted per criterion)", height=120 + 28 * len(rows))
    fig.update_layout(margin=dict(t=70, b=10, l=10, r=10))
    return fig


def over_time_figure(answered_at: Sequence[str]) -> go.Figure:
    """Answers so far against time (ISO-8601 UTC moments, one per answered screen)."""
    moments = sorted(answered_at)
    fig = go.Figure(go.Scatter(x=moments, y=list(range(1, len(moments) + 1)), mode="lines+markers", line_shape="hv"))
    fig.update_layout(
        **LAYOUT | dict(title="Answers over time", xaxis_title="time (UTC)", yaxis_title="screens answered")
    )
    return fig


def analysis_figures(result: dict) -> dict[str, go.Figure]:
    """The figures of an analysis, by name: mos, normalised, bradley_terry, controls, over_time
    (where the result has ``answered_at``) and pairwise, each only when it has something to show
    (none for an empty study)."""
    figures: dict[str, go.Figure] = {}
    if any(result["mos"].values()):
        figures["mos"] = score_figure(result["mos"], f"Mean opinion score<br>{CI_NOTE}", SCORE_AXIS)
    if any(result["normalised"].values()):
        title = f"Per-rater normalised score<br>{CI_NOTE}"
        figures["normalised"] = score_figure(result["normalised"], title, Z_AXIS)
    if result["bradley_terry"]:
        figures["bradley_terry"] = strength_figure(result["bradley_terry"])
    if result["controls"]:
        controls: dict[str, list[dict]] = {}
        for r in result["controls"]:
            controls.setdefault(r["criterion"], []).append(r | {"ci_low": None, "ci_high": None})
        figures["controls"] = score_figure(controls, "Controls: hidden reference<br>and anchor", SCORE_AXIS)
    if result.get("answered_at"):
        figures["over_time"] = over_time_figure(result["answered_at"])
    if result["pairwise"]:
        figures["pairwise"] = pairwise_figure(result["pairwise"])
    return figures


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str, Callable[[Any], str]]]) -> str:
    """An HTML table; every cell and header escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r.get(k)))}</td>" for k, _, fmt in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _counts(counts: dict) -> str:
    return (
        f"{counts['raters']} raters, {counts['flagged_raters']} left out after failing an attention check; "
        f"{counts['ratings_used']} of {counts['ratings']} ratings and {counts['choices_used']} of "
        f"{counts['choices']} preferences used, from {counts['raters_used']} raters."
    )


def _section(heading: str, body: str) -> str:
    return f"<h2>{html.escape(heading)}</h2>\n{body}"


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}"
    "table{border-collapse:collapse;font-size:.9rem;display:block;overflow-x:auto}"
    "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
)


def report_html(result: dict, title: str) -> str:
    """A self-contained HTML page of ``result``: counts, power sentences, figures (plotly.js
    embedded in the first only) and tables (MOS, pairwise tests, Bradley–Terry, agreement,
    controls, attention exclusions). All text from the data is escaped."""
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_counts(result['counts']))}</p>"]
    if result["message"]:
        parts.append(f"<p><strong>{html.escape(result['message'])}</strong></p>")
    if result["power"]:
        items = "".join(f"<li>{html.escape(p['sentence'])}</li>" for p in result["power"])
        parts.append(_section("Raters needed (paired t-test)", f"<ul>{items}</ul>"))
    figures = [f for name, f in analysis_figures(result).items() if name != "pairwise"]
    parts += [f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)]
    mos = [r | {"criterion": c} for c, rows in result["mos"].items() for r in rows]
    if mos:
        columns = [(k, k.replace("_", " "), _number) for k in ("criterion", "system", "n", "raters", "mean")]
        columns += [("ci_low", "95 % CI low", _number), ("ci_high", "95 % CI high", _number)]
        parts.append(_section("Mean opinion scores", _table(mos, columns)))
    if result["pairwise"]:
        parts.append(_section("Pairwise tests", _table(result["pairwise"], PAIRWISE_COLUMNS)))
    if result["bradley_terry"]:
        columns = [(k, k.replace("_", " "), _number) for k in ("system", "strength", "ci_low", "ci_high")]
        columns += [("p_beats_average", "P(beats average)", _number), ("chosen", "chosen", _number)]
        parts.append(_section("Bradley–Terry strengths", _table(result["bradley_terry"], columns)))
    agreement = list(result["agreement"].values())
    if agreement:
        columns = [("criterion", "criterion", _text), ("alpha", "Krippendorff α (ordinal)", _number)]
        columns += [("raters", "raters", _number), ("units", "units", _number), ("reason", "note", _text)]
        parts.append(_section("Agreement between raters", _table(agreement, columns)))
    if result["controls"]:
        columns = [(k, k, _number) for k in ("criterion", "system", "n", "raters", "mean")]
        parts.append(_section("Controls (not systems)", _table(result["controls"], columns)))
    if result["exclusions"]:
        columns = [(k, k, _text) for k in ("rater", "item", "reason")]
        parts.append(_section("Attention checks failed", _table(result["exclusions"], columns)))
    head = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
    head += f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
