"""The statistics of a listening study, as pure functions of its answers in tidy long form.

``ratings``: one row per score, columns rater, item, prompt, system, criterion, score, kind.
``choices``: one row per preference, columns rater, item, prompt, shown (tuple of the systems on
the screen, 2 or more), chosen (a system, or None for "same / no preference"), kind.
An item is one screen a rater answered (a pair, or several clips of one prompt); kind is "trial"
or "attention". Attention items hold the reference and ``DEGRADED``; multi-stimulus trials may
hold the controls ``HIDDEN_REFERENCE`` (the reference again) and ``ANCHOR`` (the degraded clip).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain, combinations
from typing import Any, NamedTuple

import choix
import krippendorff
import numpy as np
import pandas as pd
from scipy.stats import binomtest, nct, wilcoxon
from scipy.stats import t as student_t

from demo.listening.study import ANCHOR, DEGRADED, HIDDEN_REFERENCE

RATING_COLUMNS = ("rater", "item", "prompt", "system", "criterion", "score", "kind")
CHOICE_COLUMNS = ("rater", "item", "prompt", "shown", "chosen", "kind")
CONTROLS = (HIDDEN_REFERENCE, ANCHOR)
MAX_RATERS = 10_000
NO_ANSWERS = "no answers yet"
PREFERENCE = "preference"  # the criterion name of the preference tests in ``pairwise_tests``


def _frame(data: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    # Empty input of any shape becomes an empty frame with the columns, so every function runs on it.
    if data is None or len(data) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object) for c in columns})
    missing = sorted(set(columns) - set(data.columns))
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    return data


def _ratings(ratings: pd.DataFrame | None) -> pd.DataFrame:
    return _frame(ratings, RATING_COLUMNS)


def _choices(choices: pd.DataFrame | None) -> pd.DataFrame:
    return _frame(choices, CHOICE_COLUMNS)


def _above(ratings: pd.DataFrame, worse: str, better: str) -> list[tuple[str, str]]:
    """(rater, item) pairs where the mean score of ``worse`` exceeds that of ``better`` on one item."""
    means = ratings.groupby(["rater", "item", "system"])["score"].mean().unstack("system")
    if worse not in means.columns or better not in means.columns:
        return []
    return list(means.index[means[worse] > means[better]])


def attention_failures(
    ratings: pd.DataFrame, choices: pd.DataFrame, reference: str | None, harmony: str = "harmony"
) -> pd.DataFrame:
    """One row (rater, item, reason) per failed check. A rater fails a check when
    - on an attention item they chose ``DEGRADED`` over the reference;
    - on an attention item they scored ``DEGRADED`` above the reference on the criterion ``harmony``
      (on the mean over all criteria when no attention rating is on ``harmony``);
    - on a multi-stimulus trial they scored ``ANCHOR`` above ``HIDDEN_REFERENCE`` on the mean over
      all criteria."""
    ratings, choices = _ratings(ratings), _choices(choices)
    rows = [
        (r, i, f"chose {DEGRADED} over {reference}")
        for r, i, k, c in zip(choices["rater"], choices["item"], choices["kind"], choices["chosen"], strict=True)
        if k == "attention" and c == DEGRADED
    ]
    if reference is not None:
        checks = ratings[ratings["kind"] == "attention"]
        on_harmony = checks["criterion"] == harmony
        what = harmony if on_harmony.any() else "mean of criteria"
        checks = checks[on_harmony] if on_harmony.any() else checks
        reason = f"scored {DEGRADED} above {reference} ({what})"
        rows += [(r, i, reason) for r, i in _above(checks, DEGRADED, reference)]
    trials = ratings[ratings["kind"] == "trial"]
    rows += [(r, i, f"scored {ANCHOR} above {HIDDEN_REFERENCE}") for r, i in _above(trials, ANCHOR, HIDDEN_REFERENCE)]
    return pd.DataFrame(rows, columns=["rater", "item", "reason"]).drop_duplicates(ignore_index=True)


def flagged_raters(
    ratings: pd.DataFrame, choices: pd.DataFrame, reference: str | None, harmony: str = "harmony"
) -> set[str]:
    """Raters who failed at least one attention check (the rule: ``attention_failures``)."""
    return set(attention_failures(ratings, choices, reference, harmony)["rater"])


class Usable(NamedTuple):
    ratings: pd.DataFrame  # trials of raters in good standing, controls left out
    choices: pd.DataFrame  # trials of raters in good standing (controls stay in ``shown``)
    controls: pd.DataFrame  # per criterion and control: n, raters, mean score


def usable(ratings: pd.DataFrame, choices: pd.DataFrame, flagged: Iterable[str]) -> Usable:
    """The answers the comparisons use: no attention items, no row of a flagged rater, and no
    rating of ``HIDDEN_REFERENCE`` or ``ANCHOR`` (checks, not systems), whose mean scores per
    criterion are returned apart as ``controls``. In ``choices`` the controls stay among the clips
    shown, since the rater chose among them: leaving them out would bias the top-1 model;
    ``bradley_terry`` and ``pairwise_tests`` fit them but leave them out of their tables."""
    ratings, choices, flagged = _ratings(ratings), _choices(choices), set(flagged)
    ratings = ratings[(ratings["kind"] == "trial") & ~ratings["rater"].isin(flagged)]
    choices = choices[(choices["kind"] == "trial") & ~choices["rater"].isin(flagged)]
    is_control = ratings["system"].isin(CONTROLS)
    controls = (
        ratings[is_control]
        .groupby(["criterion", "system"])
        .agg(n=("score", "size"), raters=("rater", "nunique"), mean=("score", "mean"))
        .reset_index()
    )
    return Usable(ratings[~is_control], choices, controls)


def _rater_bootstrap(values: pd.DataFrame, column: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Per system: n values, raters, their mean, and the 2.5 / 97.5 percentiles of that mean over
    ``n_boot`` resamples of whole raters with replacement (a cluster bootstrap: with rater r drawn
    w_r times, the replicate mean is Σ_r w_r S_r / Σ_r w_r N_r, S_r and N_r the sum and count of r's
    values)."""
    columns = ["system", "n", "raters", "mean", "ci_low", "ci_high"]
    if values.empty:
        return pd.DataFrame(columns=columns)
    grouped = values.groupby(["rater", "system"])[column]
    sums, counts = grouped.sum().unstack(fill_value=0.0), grouped.count().unstack(fill_value=0)
    k = len(sums)
    draws = np.random.default_rng(seed).multinomial(k, np.full(k, 1 / k), size=max(n_boot, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (draws @ sums.to_numpy(float)) / (draws @ counts.to_numpy(float))
    low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0) if n_boot > 0 else (np.nan, np.nan)
    table = pd.DataFrame(
        {
            "system": sums.columns,
            "n": counts.sum().to_numpy(),
            "raters": (counts > 0).sum().to_numpy(),
            "mean": sums.sum().to_numpy() / counts.sum().to_numpy(),
            "ci_low": low,
            "ci_high": high,
        }
    )
    return table.sort_values("mean", ascending=False, ignore_index=True)


def mean_opinion_scores(ratings: pd.DataFrame, criterion: str, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per system (columns system, n, raters, mean, ci_low, ci_high): the mean opinion score
    MOS = Σx/n over the n scores x on ``criterion`` and its 95 % percentile CI from a bootstrap that
    resamples raters, not scores, since the scores of one rater are correlated."""
    ratings = _ratings(ratings)
    return _rater_bootstrap(ratings[ratings["criterion"] == criterion], "score", n_boot, seed)


def normalised_scores(ratings: pd.DataFrame, criterion: str, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """As ``mean_opinion_scores``, of per-rater z-scores z = (x − m_r) / s_r, m_r and s_r the mean
    and standard deviation (ddof = 0) of rater r's scores on ``criterion``; z = 0 when s_r = 0.
    This removes each rater's own use of the scale (lenient, strict, narrow)."""
    ratings = _ratings(ratings)
    scores = ratings[ratings["criterion"] == criterion]
    by_rater = scores.groupby("rater")["score"]
    spread = by_rater.transform("std", ddof=0)
    z = ((scores["score"] - by_rater.transform("mean")) / spread).where(spread > 0, 0.0)
    return _rater_bootstrap(scores.assign(z=z), "z", n_boot, seed)


def _top1(shown: Sequence[str], chosen: Any, index: dict[str, int]) -> list[tuple[int, tuple[int, ...]]]:
    # Units of half an answer, so that a tie between two clips is half a win for each side.
    clips = [index[s] for s in shown]
    if pd.isna(chosen):
        return [(clips[0], (clips[1],)), (clips[1], (clips[0],))] if len(clips) == 2 else []
    if chosen not in index or index[chosen] not in clips:
        return []
    entry = (index[chosen], tuple(c for c in clips if c != index[chosen]))
    return [entry, entry]


def _fit(n: int, data: list[tuple[int, tuple[int, ...]]], alpha: float, start: np.ndarray | None) -> np.ndarray:
    try:
        return np.asarray(choix.ilsr_top1(n, data, alpha=alpha, initial_params=start, max_iter=500), dtype=float)
    except RuntimeError:  # no convergence: this replicate says nothing
        return np.full(n, np.nan)


def bradley_terry(choices: pd.DataFrame, n_boot: int = 1000, seed: int = 0, alpha: float = 0.01) -> pd.DataFrame:
    """Per system (columns system, strength, ci_low, ci_high, p_beats_average, chosen, shown): the
    Bradley–Terry / Luce strength θ, P(i chosen from a set S) = e^θ_i / Σ_{j∈S} e^θ_j, fitted to all
    answers by ``choix.ilsr_top1`` (a pair is the top-1 choice from two clips), with ``alpha``
    regularisation so that a system that always wins stays finite. θ is on the natural-log scale,
    centred to mean 0 over the systems (not the controls); p_beats_average = 1 / (1 + e^−θ) is the
    probability of being preferred to a system of average strength. The 95 % CI is percentile over
    ``n_boot`` resamples of raters. A decisive answer counts as one choice; "same" between two clips
    as half a win for each side; "same" among more clips is left out (Luce's model has no ties).
    Answers whose chosen clip was not shown are left out."""
    choices = _choices(choices)
    columns = ["system", "strength", "ci_low", "ci_high", "p_beats_average", "chosen", "shown"]
    systems = sorted(set(chain.from_iterable(choices["shown"])))
    if not systems:
        return pd.DataFrame(columns=columns)
    index = {s: i for i, s in enumerate(systems)}
    real = np.array([s not in CONTROLS for s in systems])
    raters = sorted(set(choices["rater"]))
    data: dict[str, list[tuple[int, tuple[int, ...]]]] = {r: [] for r in raters}
    seen = {r: np.zeros(len(systems), bool) for r in raters}
    for rater, shown, chosen in zip(choices["rater"], choices["shown"], choices["chosen"], strict=True):
        data[rater] += _top1(shown, chosen, index)
        seen[rater][[index[s] for s in shown]] = True

    def centred(theta: np.ndarray, present: np.ndarray) -> np.ndarray:
        theta = np.where(present, theta, np.nan)
        return theta - np.nanmean(theta[real]) if (present & real).any() else theta

    everyone = np.ones(len(systems), bool)
    theta = centred(_fit(len(systems), list(chain.from_iterable(data.values())), alpha, None), everyone)
    rng, boot = np.random.default_rng(seed), []
    for _ in range(n_boot):
        drawn = [raters[i] for i in rng.integers(0, len(raters), len(raters))]
        present = np.any([seen[r] for r in drawn], axis=0)
        fitted = _fit(len(systems), list(chain.from_iterable(data[r] for r in drawn)), alpha, np.nan_to_num(theta))
        boot.append(centred(fitted, present))
    low, high = np.nanpercentile(np.array(boot), [2.5, 97.5], axis=0) if boot else (np.nan, np.nan)
    chosen_counts = choices["chosen"].value_counts()
    table = pd.DataFrame(
        {
            "system": systems,
            "strength": theta,
            "ci_low": low,
            "ci_high": high,
            "p_beats_average": 1 / (1 + np.exp(-theta)),
            "chosen": [int(chosen_counts.get(s, 0)) for s in systems],
            "shown": [int(sum(s in shown for shown in choices["shown"])) for s in systems],
        }
    )
    return table[real].sort_values("strength", ascending=False, ignore_index=True)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: with the m non-NaN p-values sorted p_(1) ≤ … ≤ p_(m), the
    adjusted p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) · p_(j)) (the running maximum keeps them
    monotone). Rejecting where p̃ ≤ α controls the family-wise error rate at α. NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def _ordered(systems: Iterable[str], reference: str | None) -> list[str]:
    # The reference first, so that differences read "reference − other".
    rest = sorted(set(systems) - {reference})
    return [reference, *rest] if reference in set(systems) else rest


def _rating_tests(scores: pd.DataFrame, criterion: str, reference: str | None) -> list[dict]:
    means = scores.groupby(["rater", "item", "system"])["score"].mean().unstack("system")
    rows = []
    for a, b in combinations(_ordered(means.columns, reference), 2):
        d = (means[a] - means[b]).dropna().to_numpy()
        if not len(d):  # never on one screen (e.g. two baselines of a reference design): no test
            continue
        rows.append(
            {
                "criterion": criterion,
                "system_a": a,
                "system_b": b,
                "test": "wilcoxon",
                "n": len(d),
                "mean_diff": float(d.mean()) if len(d) else math.nan,
                "wins": int((d > 0).sum()),
                "losses": int((d < 0).sum()),
                "ties": int((d == 0).sum()),
                "p": float(wilcoxon(d).pvalue) if np.any(d != 0) else math.nan,
            }
        )
    return rows


def _preference_tests(choices: pd.DataFrame, reference: str | None) -> list[dict]:
    tally: dict[tuple[str, str], list[int]] = {}  # (a, b) -> [a chosen, b chosen, same]
    for shown, chosen in zip(choices["shown"], choices["chosen"], strict=True):
        clips = _ordered([s for s in shown if s not in CONTROLS], reference)
        for a, b in combinations(clips, 2):
            if pd.isna(chosen) or chosen in (a, b):
                tally.setdefault((a, b), [0, 0, 0])[2 if pd.isna(chosen) else int(chosen == b)] += 1
    rows = []
    for (a, b), (wins, losses, ties) in sorted(tally.items()):
        p = float(binomtest(wins, wins + losses).pvalue) if wins + losses else math.nan
        rows.append(
            {"criterion": PREFERENCE, "system_a": a, "system_b": b, "test": "sign", "n": wins + losses + ties}
            | {"mean_diff": math.nan, "wins": wins, "losses": losses, "ties": ties, "p": p}
        )
    return rows


def pairwise_tests(
    ratings: pd.DataFrame, choices: pd.DataFrame, criteria: Sequence[str], reference: str | None = None
) -> pd.DataFrame:
    """One row per criterion and pair of systems (a = the reference when it is one of them):
    - scores: the n ≥ 1 differences d = x_a − x_b of the scores one rater gave a and b on one item,
      their mean, wins/losses/ties (d > 0, < 0, = 0), and the Wilcoxon signed-rank p (zero
      differences dropped; NaN when all are 0). The items of one rater count as independent pairs;
    - preferences (criterion "preference"): answers choosing a, choosing b, or "same", on items that
      showed both (a multi-clip choice counts for the chosen clip against each other one, "same"
      as a tie for every pair), and the two-sided exact sign test p of wins in wins + losses at 1/2.
    Each criterion (and the preferences) is one family: ``p_holm`` is Holm-adjusted within it and
    ``significant`` means p_holm < 0.05."""
    ratings, choices = _ratings(ratings), _choices(choices)
    families = [_rating_tests(ratings[ratings["criterion"] == c], c, reference) for c in criteria]
    families.append(_preference_tests(choices, reference))
    adjusted = [holm([row["p"] for row in family]) for family in families]
    rows = [row | {"p_holm": p} for f, ps in zip(families, adjusted, strict=True) for row, p in zip(f, ps, strict=True)]
    columns = ["criterion", "system_a", "system_b", "test", "n", "mean_diff", "wins", "losses", "ties", "p", "p_holm"]
    table = pd.DataFrame(rows, columns=columns)
    return table.assign(significant=table["p_holm"] < 0.05)


def agreement(ratings: pd.DataFrame, criterion: str) -> dict:
    """Krippendorff's α = 1 − D_o / D_e (observed over expected disagreement, ordinal distance) of
    the scores on ``criterion``: reliability data is raters × units, a unit one (item, system),
    NaN where a rater did not score it. Only units scored by at least 2 raters count. Returns
    criterion, alpha (NaN with a ``reason`` when it is undefined), raters and units."""
    ratings = _ratings(ratings)
    scores = ratings[ratings["criterion"] == criterion]
    table = scores.groupby(["rater", "item", "system"])["score"].mean().unstack(["item", "system"])
    table = table.loc[:, table.notna().sum() >= 2] if len(table) else table
    result: dict[str, Any] = {"criterion": criterion, "alpha": math.nan, "raters": 0, "units": table.shape[1]}
    result["raters"] = int(table.notna().any(axis=1).sum()) if table.shape[1] else 0
    if table.shape[1] == 0:
        return result | {"reason": "fewer than 2 raters scored any one item and system"}
    values = np.unique(table.to_numpy(float)[table.notna().to_numpy(bool)])
    if len(values) < 2:
        return result | {"reason": "every score is the same"}
    alpha = krippendorff.alpha(reliability_data=table.to_numpy(float), level_of_measurement="ordinal")
    return result | {"alpha": float(alpha), "reason": ""}


def rater_differences(ratings: pd.DataFrame, criterion: str, a: str, b: str) -> pd.Series:
    """Per rater, the mean over items they scored both a and b of x_a − x_b on ``criterion``."""
    ratings = _ratings(ratings)
    scores = ratings[(ratings["criterion"] == criterion) & ratings["system"].isin([a, b])]
    means = scores.groupby(["rater", "item", "system"])["score"].mean().unstack("system")
    if a not in means.columns or b not in means.columns:
        return pd.Series(dtype=float)
    return (means[a] - means[b]).dropna().groupby(level="rater").mean()


def raters_for_power(d_z: float, power: float = 0.8, alpha: float = 0.05, cap: int = MAX_RATERS) -> int | None:
    """The smallest n ≥ 2 at which a two-sided paired t-test at ``alpha`` reaches ``power`` for the
    effect d_z: with df = n − 1, λ = |d_z| √n and c = t_{1−α/2}(df), power(n) = P(T > c) + P(T < −c),
    T noncentral t(df, λ). None when d_z is 0 or undefined, or more than ``cap`` raters are needed."""
    if not math.isfinite(d_z) or d_z == 0:
        return None
    n = np.arange(2, cap + 1)
    critical = student_t.ppf(1 - alpha / 2, n - 1)
    reached = nct.sf(critical, n - 1, abs(d_z) * np.sqrt(n)) + nct.cdf(-critical, n - 1, abs(d_z) * np.sqrt(n))
    hits = np.flatnonzero(reached >= power)
    return int(n[hits[0]]) if len(hits) else None


def raters_needed(
    ratings: pd.DataFrame, criterion: str, a: str, b: str, power: float = 0.8, alpha: float = 0.05
) -> dict:
    """The observed effect d_z = mean / sd (ddof = 1) of the per-rater mean differences a − b
    (``rater_differences``), the raters a paired t-test needs for ``power`` at ``alpha``
    (``raters_for_power``), how many more than the k counted, and a sentence saying so."""
    d = rater_differences(ratings, criterion, a, b).to_numpy()
    k, mean = len(d), float(d.mean()) if len(d) else math.nan
    sd = float(d.std(ddof=1)) if k > 1 else math.nan
    d_z = mean / sd if k > 1 and sd > 0 else (0.0 if k > 1 and mean == 0 else math.nan)
    n = raters_for_power(d_z, power, alpha)
    what, goal = f"{a} vs {b} on {criterion}", f"{power * 100:g} % power"
    if k < 2:
        sentence = f"{what}: d_z undefined: {k} rater(s) scored both (2 needed)."
    elif d_z == 0:
        sentence = f"{what}: no effect (d_z = 0 from {k} raters): no number of raters gives {goal}."
    elif not math.isfinite(d_z):
        sentence = f"{what}: every rater shows the same difference ({mean:+.2f}); d_z undefined until they differ."
    elif n is None:
        sentence = f"{what}: d_z = {d_z:.2f} from {k} raters: more than {MAX_RATERS:,} raters needed for {goal}."
    else:
        more = f"{n - k} more" if n > k else "enough already"
        sentence = f"{what}: d_z = {d_z:.2f} from {k} raters: {n} raters give {goal}; {more}."
    found: dict[str, Any] = dict(criterion=criterion, a=a, b=b, raters=k, mean_diff=mean, sd=sd, d_z=d_z)
    found |= dict(n_needed=n, more=None if n is None else max(n - k, 0), capped=n is None and abs(d_z) > 0)
    return found | dict(power=power, alpha=alpha, sentence=sentence)


def _plain(value: Any) -> Any:
    # JSON-safe: builtin types only, NaN and infinity as None.
    if isinstance(value, pd.DataFrame):
        return [_plain(r) for r in value.to_dict("records")]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return None if value is pd.NA or value is None else value


def _power_pairs(mos: pd.DataFrame, reference: str | None) -> list[tuple[str, str]]:
    systems = list(mos["system"])  # best first
    if reference is not None and reference in systems:
        return [(reference, s) for s in systems if s != reference]
    return [(systems[0], systems[1])] if len(systems) > 1 else []


def analyse(
    ratings: pd.DataFrame | None,
    choices: pd.DataFrame | None,
    *,
    reference: str | None,
    criteria: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    harmony: str = "harmony",
) -> dict:
    """Everything above, JSON-serialisable (NaN as None): counts and attention exclusions, then on
    the usable answers per criterion (``criteria``: those present when None) the MOS, normalised
    scores, agreement and the power of reference vs each other system (the top two by MOS without
    a reference); the Bradley–Terry strengths (at most 1000 replicates: each is a fit), the
    pairwise tests and the control means. ``message`` is "no answers yet" when nothing is usable."""
    ratings, choices = _ratings(ratings), _choices(choices)
    failures = attention_failures(ratings, choices, reference, harmony)
    used = usable(ratings, choices, set(failures["rater"]))
    criteria = sorted(set(ratings["criterion"])) if criteria is None else list(criteria)
    screens = set(zip(used.ratings["rater"], used.ratings["item"], strict=True))
    screens |= set(zip(used.choices["rater"], used.choices["item"], strict=True))
    counts = dict(raters=len(set(ratings["rater"]) | set(choices["rater"])), flagged_raters=len(set(failures["rater"])))
    counts |= dict(raters_used=len(set(used.ratings["rater"]) | set(used.choices["rater"])), items_used=len(screens))
    counts |= dict(ratings=len(ratings), choices=len(choices))
    counts |= dict(ratings_used=len(used.ratings), choices_used=len(used.choices))
    empty = used.ratings.empty and used.choices.empty
    result: dict[str, Any] = dict(message=NO_ANSWERS if empty else "", reference=reference, criteria=criteria)
    result |= dict(counts=counts, exclusions=failures, controls=used.controls)
    result |= dict(mos={}, normalised={}, agreement={}, power=[])
    for c in criteria:
        mos = mean_opinion_scores(used.ratings, c, n_boot, seed)
        result["mos"][c] = mos
        result["normalised"][c] = normalised_scores(used.ratings, c, n_boot, seed)
        result["agreement"][c] = agreement(used.ratings, c)
        result["power"] += [raters_needed(used.ratings, c, a, b) for a, b in _power_pairs(mos, reference)]
    result["bradley_terry"] = bradley_terry(used.choices, min(n_boot, 1000), seed)
    result["pairwise"] = pairwise_tests(used.ratings, used.choices, criteria, reference)
    systems = set(used.ratings["system"]) | set(chain.from_iterable(used.choices["shown"]))
    result["systems"] = _ordered(systems - set(CONTROLS), reference)
    return _plain(result)
