"""Gradio Blocks of the FGG Music app (a thin layer over ``fgg``).

For now the page checks chord progressions with the same parser the generator will use;
the generate / compare / evaluate / listening-test tabs build on it.
"""
from __future__ import annotations

import gradio as gr

from fgg.chords import chord_name, parse_progression
from fgg.pianoroll import BEATS_PER_BAR

EXAMPLES = [
    ["C G | Am F"],
    ["Dm7 | G7 | Cmaj7 | Cmaj7"],
    ["Am | F | C | E7"],
    ["Dm7 | G/D | Dm7 | G/D"],
]


def describe_progression(text: str) -> str:
    """Markdown table of the parsed chords, one row per bar; ``gr.Error`` on bad input."""
    try:
        progression = parse_progression(text)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    rows = ["| bar | beat 1 | beat 2 | beat 3 | beat 4 |", "|---|---|---|---|---|"]
    for bar in range(progression.n_bars):
        beats = progression.labels[bar * BEATS_PER_BAR:(bar + 1) * BEATS_PER_BAR]
        rows.append(f"| {bar + 1} | " + " | ".join(f"{chord_name(b)} (`{b}`)" for b in beats) + " |")
    return "\n".join(rows)


def build_app() -> gr.Blocks:
    with gr.Blocks(title="FGG Music") as app:
        gr.Markdown("# FGG Music\nFine-grained guidance for diffusion-based accompaniment generation "
                    "(Zhu et al., ICML 2025). Enter a chord progression: bars separated by `|`, "
                    "lead-sheet symbols (`Am7`, `G7/B`) or Harte labels (`A:min7`).")
        chords = gr.Textbox(label="Chord progression", value=EXAMPLES[0][0])
        check = gr.Button("Parse", variant="primary")
        table = gr.Markdown()
        gr.Examples(EXAMPLES, inputs=[chords])
        check.click(describe_progression, inputs=chords, outputs=table, api_name="parse")
    return app
