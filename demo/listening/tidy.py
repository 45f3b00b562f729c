"""The answers in long ("tidy") form: one row per rating, as the analysis
(``demo.listening.analysis``) reads them and the export writes them.

``ratings``: rater, item, prompt, system, criterion, score, kind ("trial" or "attention").
``choices``: rater, item, prompt, shown (the systems on the screen, in the order heard), chosen
(a system, or None for "same"), kind.

Today's store holds the pairwise study the app serves (``fgg-vs-baselines``): an answer is
FGG against one baseline on one POP909 segment (``ListeningStore.answers``).
"""

from __future__ import annotations

import pandas as pd

from demo.listening.analysis import CHOICE_COLUMNS, RATING_COLUMNS
from demo.listening.schema import CRITERIA, FGG_SYSTEM
from demo.listening.study import Study

EXPORT_COLUMNS = ("study", "config_hash", *RATING_COLUMNS, "heard_as", "submitted_at")


def pair_frames(answers: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ListeningStore.answers()`` -> (ratings, choices)."""
    ratings, choices = [], []
    for a in answers:
        common = {
            "rater": a["rater"],
            "item": a["pair"],
            "prompt": f"seg{a['segment']:04d}",
            "kind": "attention" if a["attention_check"] else "trial",
        }
        for side, system in (("fgg", FGG_SYSTEM), ("baseline", a["baseline"])):
            heard_as = "A" if a["system_a"] == system else "B"
            for c in CRITERIA:
                ratings.append(
                    common
                    | {"system": system, "criterion": c, "score": a[f"{side}_{c}"]}
                    | {"heard_as": heard_as, "submitted_at": a["submitted_at"]}
                )
        chosen = None if a["preferred"] == "same" else a["preferred"]
        choices.append(common | {"shown": (a["system_a"], a["system_b"]), "chosen": chosen})
    return (
        pd.DataFrame(ratings, columns=[*RATING_COLUMNS, "heard_as", "submitted_at"]),
        pd.DataFrame(choices, columns=list(CHOICE_COLUMNS)),
    )


def export_rows(study: Study, ratings: pd.DataFrame) -> list[dict]:
    """One dict per rating, with the study's id and config hash (``Study.config_hash``), so
    an exported file always says which study, exactly, it answers."""
    rows = ratings.assign(study=study.id, config_hash=study.config_hash)
    return [{k: row[k] for k in EXPORT_COLUMNS} for row in rows.to_dict("records")]
