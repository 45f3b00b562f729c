"""The listening test's statistics, as pure functions of the answers (``ListeningStore.answers``:
one dict per answer, sides resolved to ``fgg_<criterion>`` and ``baseline_<criterion>``)."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, wilcoxon

from demo.listening.schema import ATTENTION_SYSTEM, CRITERIA, FGG_SYSTEM


def flagged_raters(answers: list[dict]) -> set[str]:
    """Raters who failed an attention check: preferred the degraded clip, or rated its
    harmony above the original's."""
    return {
        a["rater"]
        for a in answers
        if a["attention_check"] and (a["preferred"] == ATTENTION_SYSTEM or a["baseline_harmony"] > a["fgg_harmony"])
    }


def usable_answers(answers: list[dict]) -> list[dict]:
    """The answers the results use: no attention-check answers, none from a flagged rater."""
    flagged = flagged_raters(answers)
    return [a for a in answers if not a["attention_check"] and a["rater"] not in flagged]


def system_ratings(system: str, rows: list[dict], prefix: str) -> dict:
    """One system's row of the ratings table: per criterion c, the mean m = Σx/n of the
    ``<prefix>_c`` ratings x and the half-width of their 95 % CI, 1.96 · s/√n (s: the sample
    standard deviation; NaN when n < 2)."""
    entry: dict = {"system": system, "answers": len(rows)}
    for c in CRITERIA:
        v = np.array([a[f"{prefix}_{c}"] for a in rows], dtype=float)
        entry[c] = float(v.mean()) if len(v) else float("nan")
        entry[f"{c}_ci95"] = float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return entry


def preference_test(baseline: str, rows: list[dict]) -> dict:
    """FGG against one baseline: W answers preferring FGG, L preferring the baseline, the rest
    "same"; the two-sided exact binomial (sign) test of W successes in W + L trials at p = 1/2
    (NaN when W + L = 0), and per criterion the p-value of the Wilcoxon signed-rank test of
    the paired differences fgg − baseline (NaN for fewer than 2 answers or all differences 0)."""
    wins = sum(a["preferred"] == FGG_SYSTEM for a in rows)
    losses = sum(a["preferred"] == baseline for a in rows)
    test: dict = {
        "baseline": baseline,
        "answers": len(rows),
        "fgg_preferred": wins,
        "baseline_preferred": losses,
        "same": len(rows) - wins - losses,
        "sign_test_p": float(binomtest(wins, wins + losses).pvalue) if wins + losses else float("nan"),
    }
    for c in CRITERIA:
        diff = np.array([a[f"fgg_{c}"] - a[f"baseline_{c}"] for a in rows], dtype=float)
        test[f"{c}_wilcoxon_p"] = float(wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else float("nan")
    return test


def summarize(answers: list[dict]) -> dict:
    """Per system: mean and 95 % CI of each criterion (``system_ratings``); per baseline: how
    often FGG was preferred, with a sign test and Wilcoxon tests (``preference_test``).
    Attention-check answers and every answer of a rater who failed one (``flagged_raters``)
    are left out; ``raters`` counts them."""
    used = usable_answers(answers)
    baselines = sorted({a["baseline"] for a in used})
    systems = sorted(set(baselines) | ({FGG_SYSTEM} if used else set()))
    table = [
        system_ratings(FGG_SYSTEM, used, "fgg")
        if system == FGG_SYSTEM
        else system_ratings(system, [a for a in used if a["baseline"] == system], "baseline")
        for system in systems
    ]
    tests = [preference_test(b, [a for a in used if a["baseline"] == b]) for b in baselines]
    raters = {
        "raters": len({a["rater"] for a in answers}),
        "flagged_raters": len(flagged_raters(answers)),
        "answers_used": len(used),
        "answers": len(answers),
    }
    return {"systems": table, "preference": tests, "raters": raters}
