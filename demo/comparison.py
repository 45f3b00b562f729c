"""What Compare says about two systems' rolls of one request: a table of metric differences,
and why the two are the same notes when they are."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from eval import metrics as M
from fgg.inputs import GenerationSpec
from fgg.pianoroll import roll_to_notes


def _always(spec: GenerationSpec) -> bool:
    return True


# Why two systems can make the very same notes on one request: (the reason, whether it holds
# for the request). Compare says so, instead of leaving "0 notes changed" unexplained.
SAME_BECAUSE: dict[frozenset, tuple[str, Callable[[GenerationSpec], bool]]] = {
    frozenset({"fgg", "null_rhythm"}): (
        "null_rhythm drops the rhythm condition, and this request has no rhythm",
        lambda spec: spec.counts is None,
    ),
    frozenset({"no_fgg", "last_step_remove"}): ("the unguided sample had no out-of-key note to remove", _always),
    frozenset({"no_fgg", "last_step_round"}): ("the unguided sample had no out-of-key note to move", _always),
    frozenset({"last_step_remove", "last_step_round"}): ("the unguided sample had no out-of-key note", _always),
}


def why_the_same(spec: GenerationSpec, system_a: str, system_b: str, a: np.ndarray, b: np.ndarray) -> list[str]:
    """A sentence when A and B are the same notes although the systems differ, with the reason
    where it is known (``SAME_BECAUSE``)."""
    if system_a == system_b or not np.array_equal(a, b):
        return []
    reason, holds = SAME_BECAUSE.get(frozenset({system_a, system_b}), ("", _always))
    if not (reason and holds(spec)):
        reason = "on this request the two systems agree"
    return [f"A ({system_a}) and B ({system_b}) are the same notes: {reason}."]


def compare_table(a: np.ndarray, b: np.ndarray, allowed: np.ndarray, system_a: str, system_b: str) -> pd.DataFrame:
    """One row per metric of rolls ``a`` and ``b`` (and B − A), then the notes changed."""
    rows = []
    for metric, fn in (
        ("out_of_key_rate", lambda r: M.out_of_key_rate(r, allowed)),
        ("out_of_key_note_rate", lambda r: M.out_of_key_note_rate(r, allowed)),
        ("notes", lambda r: len(roll_to_notes(r))),
        ("note_density", M.note_density),
        ("polyphony", M.polyphony),
        ("pitch_range", M.pitch_range),
    ):
        va, vb = float(fn(a)), float(fn(b))
        rows.append(
            {
                "metric": metric,
                f"A ({system_a})": round(va, 4),
                f"B ({system_b})": round(vb, 4),
                "B − A": round(vb - va, 4),
            }
        )
    rows.append(
        {
            "metric": "notes changed A→B",
            f"A ({system_a})": None,
            f"B ({system_b})": None,
            "B − A": M.notes_changed(a, b),
        }
    )
    return pd.DataFrame(rows)
