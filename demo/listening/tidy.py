"""A study's answers as a file an analyst opens: one row per rating, long ("tidy") form, each
row with the study's id and config hash (``Study.config_hash``), so a file always says which
study, exactly, it answers. Columns: study, config_hash, rater, item, prompt, kind, system,
heard_as (the clip's label on the rater's screen), criterion, score, order_seed (the seed of
that screen's clip order), submitted_at (ISO-8601 UTC).

A preference is a rating too: one row per clip on the screen, criterion ``preference``, score
1 for the clip chosen and 0 for the others, 0.5 for every clip when the rater chose "same"
(the coding of the Bradley-Terry fit: a tie is half a win each way).
"""

from __future__ import annotations

import pandas as pd

from demo.listening.analysis import PREFERENCE
from demo.listening.schema import LABELS
from demo.listening.study import Study

EXPORT_COLUMNS = (
    "study",
    "config_hash",
    "rater",
    "item",
    "prompt",
    "kind",
    "system",
    "heard_as",
    "criterion",
    "score",
    "order_seed",
    "submitted_at",
)


def preference_rows(choices: pd.DataFrame) -> pd.DataFrame:
    """``choices`` as ratings of the criterion ``preference`` (see the module docstring)."""
    rows = []
    for choice in choices.to_dict("records"):
        common = {k: v for k, v in choice.items() if k not in ("shown", "chosen")} | {"criterion": PREFERENCE}
        for label, system in zip(LABELS, choice["shown"], strict=False):
            score = 0.5 if pd.isna(choice["chosen"]) else float(system == choice["chosen"])  # None reads as NaN
            rows.append(common | {"system": system, "heard_as": label, "score": score})
    return pd.DataFrame(rows)


def export_rows(study: Study, ratings: pd.DataFrame, choices: pd.DataFrame) -> list[dict]:
    """Every rating and preference of the study, one dict per row, in ``EXPORT_COLUMNS``."""
    rows = pd.concat([frame for frame in (ratings, preference_rows(choices)) if not frame.empty], ignore_index=True)
    if rows.empty:
        return []
    rows = rows.assign(study=study.id, config_hash=study.config_hash)
    return [{k: _plain(row[k]) for k in EXPORT_COLUMNS} for row in rows.to_dict("records")]


def _plain(value):
    """A cell as JSON and CSV write it (numpy scalars to Python's)."""
    return value.item() if hasattr(value, "item") else value
