"""Interactive plotly piano rolls for the app."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fgg.chords import PITCH_NAMES, chord_name
from fgg.pianoroll import (
    HIGHEST_PITCH,
    LOWEST_PITCH,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    roll_to_notes,
)

COLOURS = {
    "accompaniment": "#3b6fb6",
    "melody": "#f28e2b",
    "out of key": "#d62728",
    "added": "#2ca02c",
    "removed": "#d62728",
    "kept": "#9a9a9a",
}


def note_name(pitch: int) -> str:
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _note_trace(notes: np.ndarray, name: str, colour: str, width: int = 7) -> go.Scatter:
    """All notes of one kind as one line trace (a segment per note, separated by gaps)."""
    xs, ys, text = [], [], []
    for start, end, pitch in notes:
        label = (
            f"{note_name(int(pitch))} · bar {start // STEPS_PER_BAR + 1} beat "
            f"{start % STEPS_PER_BAR // STEPS_PER_BEAT + 1} · {end - start} sixteenths"
        )
        xs += [start / STEPS_PER_BEAT, end / STEPS_PER_BEAT - 0.04, None]
        ys += [pitch, pitch, None]
        text += [label, label, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        name=f"{name} ({len(notes)})",
        line=dict(color=colour, width=width),
        hovertext=text,
        hoverinfo="text",
    )


def _frame(traces: list[go.Scatter], n_steps: int, beat_labels=None, title: str = "") -> go.Figure:
    """``traces`` in a piano-roll frame: bar lines, chord symbols along the top, pitch axis in
    octaves. Built in one pass (the layout as one dict): plotly validates every property it is
    given, and adding bar lines and labels one call at a time cost ~0.2 s per figure."""
    bar_lines = [
        dict(type="line", xref="x", yref="y domain", x0=x, x1=x, y0=0, y1=1, line=dict(width=1, color="#bbbbbb"))
        for x in (bar * STEPS_PER_BAR / STEPS_PER_BEAT for bar in range(n_steps // STEPS_PER_BAR + 1))
    ]
    chord_symbols = []
    if beat_labels is not None:
        changes = [beat for beat, label in enumerate(beat_labels) if beat == 0 or label != beat_labels[beat - 1]]
        chord_symbols = [
            dict(
                x=beat + 0.05,
                y=HIGHEST_PITCH + 2,
                text=chord_name(str(beat_labels[beat])),
                showarrow=False,
                xanchor="left",
                font=dict(size=11, color="#444"),
            )
            for beat in changes
        ]
    layout = dict(
        title=title,
        height=380,
        margin=dict(l=50, r=10, t=50, b=40),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"),
        xaxis=dict(title="beat", range=[0, n_steps / STEPS_PER_BEAT], dtick=4, gridcolor="#eeeeee"),
        yaxis=dict(
            title="pitch",
            range=[LOWEST_PITCH - 1, HIGHEST_PITCH + 4],
            gridcolor="#f3f3f3",
            tickvals=list(range(36, 97, 12)),
            ticktext=[f"C{o}" for o in range(2, 8)],
        ),
        shapes=bar_lines,
        annotations=chord_symbols,
    )
    return go.Figure(data=traces, layout=layout)


def piano_roll_figure(
    accompaniment: np.ndarray,
    melody: np.ndarray | None = None,
    beat_labels=None,
    allowed: np.ndarray | None = None,
    title: str = "",
) -> go.Figure:
    """Melody and accompaniment in two colours, chord symbols along the top, bar lines, and
    any accompaniment note that sounds on a disallowed pitch class (``allowed`` (T, 12)) in red."""
    notes = roll_to_notes(accompaniment)
    bad = np.zeros(len(notes), dtype=bool)
    if allowed is not None and len(notes):
        bad = np.array([not allowed[s:e, p % 12].all() for s, e, p in notes])
    traces = [_note_trace(notes[~bad], "accompaniment", COLOURS["accompaniment"])]
    if bad.any():
        traces.append(_note_trace(notes[bad], "out of key", COLOURS["out of key"]))
    if melody is not None and melody.any():
        traces.insert(0, _note_trace(roll_to_notes(melody), "melody", COLOURS["melody"], width=5))
    return _frame(traces, accompaniment.shape[1], beat_labels, title)


def diff_figure(before: np.ndarray, after: np.ndarray, beat_labels=None, title: str = "") -> go.Figure:
    """Notes kept, removed and added going from ``before`` to ``after`` (e.g. FGG off -> on)."""
    a = {tuple(n) for n in roll_to_notes(before).tolist()}
    b = {tuple(n) for n in roll_to_notes(after).tolist()}

    def arr(s):
        return np.array(sorted(s), dtype=np.int64).reshape(-1, 3)

    traces = [
        _note_trace(arr(a & b), "kept", COLOURS["kept"]),
        _note_trace(arr(a - b), "removed", COLOURS["removed"]),
        _note_trace(arr(b - a), "added", COLOURS["added"]),
    ]
    return _frame(traces, after.shape[1], beat_labels, title)


def before_after_figure(
    off: np.ndarray,
    on: np.ndarray,
    melody: np.ndarray | None = None,
    beat_labels=None,
    allowed: np.ndarray | None = None,
) -> go.Figure:
    """The "How it works" figure: the same 4 bars without FGG (top) and with it (bottom),
    notes on disallowed pitch classes in red."""

    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=("FGG off: the model alone", "FGG on: same model, same noise"),
    )
    for row, roll in ((1, off), (2, on)):
        part = piano_roll_figure(roll, melody, None, allowed)
        for trace in part.data:
            trace.name = trace.name.split(" (")[0]  # counts differ per row; the legend names kinds
            trace.showlegend = row == 1
            trace.legendgroup = trace.name
            fig.add_trace(trace, row=row, col=1)
    steps = on.shape[1]
    for row in (1, 2):
        for bar in range(steps // STEPS_PER_BAR + 1):
            fig.add_vline(x=bar * STEPS_PER_BAR / STEPS_PER_BEAT, line_width=1, line_color="#bbbbbb", row=row, col=1)
        fig.update_yaxes(
            range=[LOWEST_PITCH - 1, HIGHEST_PITCH + 1],
            tickvals=list(range(36, 97, 12)),
            ticktext=[f"C{o}" for o in range(2, 8)],
            gridcolor="#f3f3f3",
            row=row,
            col=1,
        )
    fig.update_xaxes(range=[0, steps / STEPS_PER_BEAT], dtick=4, gridcolor="#eeeeee")
    fig.update_xaxes(title="beat", row=2, col=1)
    fig.update_layout(
        height=440,
        margin=dict(l=40, r=10, t=40, b=40),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    return fig
