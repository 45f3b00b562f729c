"""The listening-study analysis (``demo.listening.analysis``) on simulated raters whose truth is
known: systems with fixed strengths, raters with their own bias and noise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from demo.listening.analysis import (
    ANCHOR,
    DEGRADED,
    HIDDEN_REFERENCE,
    NO_ANSWERS,
    agreement,
    analyse,
    bradley_terry,
    flagged_raters,
    holm,
    mean_opinion_scores,
    normalised_scores,
    pairwise_tests,
    raters_for_power,
    raters_needed,
    usable,
)
from demo.listening.report import analysis_figures, report_html

STRENGTHS = {"fgg": 0.8, "no_fgg": 0.0, "inpaint": 0.3, "rule_based": -0.4}
TRUE_ORDER = sorted(STRENGTHS, key=STRENGTHS.get, reverse=True)
REFERENCE = "fgg"
CRITERIA = ("harmony", "naturalness", "creativity")
OBVIOUS = -6.0  # strength of the degraded clip and the anchor: a semitone sharp is hard to miss


def simulate(
    seed: int,
    n_raters: int = 40,
    n_prompts: int = 4,
    bias_sd: float = 0.5,
    noise_sd: float = 0.7,
    tie_rate: float = 0.1,
    contrarians: int = 0,
    uniform: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, choices) in the store's tidy format. Each rater hears, per prompt, the reference
    against each other system (pairs) and all systems with a hidden reference and an anchor
    (multi-stimulus); the first two prompts also have an attention item (reference vs degraded).
    Score = clip(round(3 + s + b_r + e), 1, 5), b_r ~ N(0, bias_sd) per rater, e ~ N(0, noise_sd);
    a choice is "same" with probability ``tie_rate``, else drawn from P(i) ∝ e^{s_i}. Contrarians
    (raters named "careless…") answer as if every strength were negated; ``uniform`` raters answer
    every score and choice uniformly at random."""
    rng = np.random.default_rng(seed)
    ratings, choices = [], []
    names = [f"r{i:03d}" for i in range(n_raters)] + [f"careless{i}" for i in range(contrarians)]
    for rater in names:
        sign, bias = (-1.0 if rater.startswith("careless") else 1.0), rng.normal(0, bias_sd)
        for p in range(n_prompts):
            prompt = f"song{p:03d}"
            screens = [
                (f"{prompt}:{REFERENCE}-{o}", {REFERENCE: STRENGTHS[REFERENCE], o: s}, "trial")
                for o, s in STRENGTHS.items()
                if o != REFERENCE
            ]
            screens.append(
                (f"{prompt}:all", STRENGTHS | {HIDDEN_REFERENCE: STRENGTHS[REFERENCE], ANCHOR: OBVIOUS}, "trial")
            )
            if p < 2:
                screens.append(
                    (f"{prompt}:attention", {REFERENCE: STRENGTHS[REFERENCE], DEGRADED: OBVIOUS}, "attention")
                )
            for item, clips, kind in screens:
                for criterion in CRITERIA:
                    for system, s in clips.items():
                        x = 3 + sign * s + bias + rng.normal(0, noise_sd)
                        score = int(rng.integers(1, 6)) if uniform else int(np.clip(np.round(x), 1, 5))
                        ratings.append((rater, item, prompt, system, criterion, score, kind))
                shown = tuple(clips)
                weights = np.ones(len(shown)) if uniform else np.exp(sign * np.array([clips[s] for s in shown]))
                chosen = None if rng.random() < tie_rate else shown[rng.choice(len(shown), p=weights / weights.sum())]
                choices.append((rater, item, prompt, shown, chosen, kind))
    return (
        pd.DataFrame(ratings, columns=["rater", "item", "prompt", "system", "criterion", "score", "kind"]),
        pd.DataFrame(choices, columns=["rater", "item", "prompt", "shown", "chosen", "kind"]),
    )


def expected_score(strength: float, sd: float) -> float:
    """E[clip(round(3 + s + ε), 1, 5)] for ε ~ N(0, sd) (the bias and noise of a random rater
    together), exactly: Σ_k k · P(round(3 + s + ε) = k), with the clipped tails on 1 and 5."""
    edges = norm.cdf((np.array([1.5, 2.5, 3.5, 4.5]) - 3 - strength) / sd)
    p = np.diff(np.concatenate([[0.0], edges, [1.0]]))
    return float(p @ np.arange(1, 6))


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate(seed=1, n_raters=40, contrarians=1)


@pytest.fixture(scope="module")
def result(study) -> dict:
    ratings, choices = study
    return analyse(ratings, choices, reference=REFERENCE, criteria=CRITERIA, n_boot=100, seed=0)


def test_recovers_true_order():
    # 8 prompts: with 4, inpaint (0.3) and no_fgg (0.0) swap places in about 1 study in 6.
    ratings, choices = simulate(seed=11, n_raters=40, n_prompts=8)
    kept = usable(ratings, choices, flagged_raters(ratings, choices, REFERENCE))
    for criterion in CRITERIA:
        assert list(mean_opinion_scores(kept.ratings, criterion, n_boot=50)["system"]) == TRUE_ORDER
        assert list(normalised_scores(kept.ratings, criterion, n_boot=50)["system"]) == TRUE_ORDER
    strengths = bradley_terry(kept.choices, n_boot=30)
    assert list(strengths["system"]) == TRUE_ORDER
    assert strengths["strength"].mean() == pytest.approx(0.0)
    # Ties shrink the strengths towards 0, so they fall a little short of the truth.
    true = np.array([STRENGTHS[s] for s in strengths["system"]])
    assert np.all(strengths["ci_low"] < strengths["strength"]) and np.all(strengths["strength"] < strengths["ci_high"])
    assert np.corrcoef(strengths["strength"], true)[0, 1] > 0.95


def test_mos_ci_covers_the_expected_score():
    """Over 200 simulated studies of 30 raters, the rater-bootstrap 95 % CI of each system's MOS
    covers its expected score (``expected_score``) about 95 % of the time (a percentile bootstrap
    over few raters falls a little short: 91-93 % here). Resampling single scores instead of
    raters covers about 70 %: each rater's bias is shared by all their scores."""
    bias_sd, noise_sd, n_raters, n_prompts = 0.5, 0.7, 30, 8
    systems = list(STRENGTHS)
    truth = {s: expected_score(v, np.hypot(bias_sd, noise_sd)) for s, v in STRENGTHS.items()}
    rng = np.random.default_rng(7)
    hits = []
    for run in range(200):
        bias = rng.normal(0, bias_sd, (n_raters, 1, 1))
        x = 3 + np.array(list(STRENGTHS.values())) + bias + rng.normal(0, noise_sd, (n_raters, n_prompts, len(systems)))
        r, p, s = np.meshgrid(np.arange(n_raters), np.arange(n_prompts), np.arange(len(systems)), indexing="ij")
        ratings = pd.DataFrame(
            {
                "rater": r.ravel().astype(str),
                "item": p.ravel().astype(str),
                "prompt": p.ravel().astype(str),
                "system": np.array(systems)[s.ravel()],
                "criterion": "harmony",
                "score": np.clip(np.round(x), 1, 5).ravel(),
                "kind": "trial",
            }
        )
        mos = mean_opinion_scores(ratings, "harmony", n_boot=200, seed=run)
        hits += [
            lo <= truth[sys] <= hi for sys, lo, hi in zip(mos["system"], mos["ci_low"], mos["ci_high"], strict=True)
        ]
    print(f"rater-bootstrap 95 % CI coverage: {np.mean(hits):.3f} over {len(hits)} intervals")  # pytest -s
    assert 0.85 <= np.mean(hits) <= 0.99


def test_agreement_zero_for_random_raters_and_high_for_consistent_ones():
    random_ratings, _ = simulate(seed=2, n_raters=15, uniform=True)
    consistent, _ = simulate(seed=3, n_raters=15, bias_sd=0.1, noise_sd=0.3)
    noisy, steady = agreement(random_ratings, "harmony"), agreement(consistent, "harmony")
    print(f"Krippendorff's alpha: random raters {noisy['alpha']:.3f}, consistent raters {steady['alpha']:.3f}")
    assert abs(noisy["alpha"]) < 0.1
    assert noisy["raters"] == 15 and noisy["units"] == 4 * (3 * 2 + 6) + 2 * 2
    assert steady["alpha"] > 0.6


def test_agreement_undefined_without_shared_units():
    ratings, _ = simulate(seed=4, n_raters=1)
    result = agreement(ratings, "harmony")
    assert np.isnan(result["alpha"]) and result["reason"] and result["raters"] == 0


def choice_frame(answers: list[tuple[str, tuple[str, ...], str | None]]) -> pd.DataFrame:
    rows = [(rater, f"i{n}", "p", shown, chosen, "trial") for n, (rater, shown, chosen) in enumerate(answers)]
    return pd.DataFrame(rows, columns=["rater", "item", "prompt", "shown", "chosen", "kind"])


def test_bradley_terry_by_hand():
    # a beats b 3 times, 1 "same" (half a win each): P(a over b) = 3.5 / 4, so θ_a − θ_b = log 7.
    pairs = choice_frame([("r1", ("a", "b"), "a")] * 3 + [("r2", ("a", "b"), None)])
    bt = bradley_terry(pairs, n_boot=0).set_index("system")
    assert bt.loc["a", "strength"] == pytest.approx(np.log(7) / 2, rel=1e-2) == -bt.loc["b", "strength"]
    assert bt.loc["a", "p_beats_average"] == pytest.approx(1 / (1 + 7**-0.5), rel=1e-2)
    # Luce top-1 from three clips: a chosen twice, b and c once each -> θ_a − θ_b = log 2, θ_b = θ_c.
    three = choice_frame([("r1", ("a", "b", "c"), x) for x in ("a", "a", "b", "c")] + [("r2", ("a", "b", "c"), None)])
    bt = bradley_terry(three, n_boot=0).set_index("system")
    assert bt.loc["a", "strength"] - bt.loc["b", "strength"] == pytest.approx(
        np.log(2), rel=2e-2
    )  # alpha shrinks a little
    assert bt.loc["b", "strength"] == pytest.approx(bt.loc["c", "strength"])
    # A system that always wins stays finite (the regularisation), with a CI over raters.
    always = bradley_terry(choice_frame([(f"r{i}", ("a", "b"), "a") for i in range(5)]), n_boot=50)
    assert np.isfinite(always[["strength", "ci_low", "ci_high"]].to_numpy()).all()
    assert list(always["system"]) == ["a", "b"] and always["strength"].iloc[0] > 2


def test_holm_by_hand():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.02, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.04) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert len(holm([])) == 0


def test_pairwise_tests_find_the_big_differences(study):
    ratings, choices = study
    kept = usable(ratings, choices, {"careless0"})
    tests = pairwise_tests(kept.ratings, kept.choices, CRITERIA, reference=REFERENCE)
    assert set(tests["criterion"]) == {*CRITERIA, "preference"}
    assert not set(tests["system_a"]) & {HIDDEN_REFERENCE, ANCHOR}
    big = tests[(tests["system_a"] == "fgg") & (tests["system_b"] == "rule_based")]
    assert len(big) == 4 and big["significant"].all() and (big["p_holm"] >= big["p"]).all()
    assert (big.loc[big["test"] == "wilcoxon", "mean_diff"] > 0).all()


def test_careless_rater_is_flagged_and_left_out(study, result):
    ratings, choices = study
    assert flagged_raters(ratings, choices, REFERENCE) == {"careless0"}
    counts = result["counts"]
    assert counts["raters"] == 41 and counts["flagged_raters"] == 1 and counts["raters_used"] == 40
    assert {e["rater"] for e in result["exclusions"]} == {"careless0"}
    assert any(DEGRADED in e["reason"] for e in result["exclusions"])
    kept = usable(ratings, choices, {"careless0"})
    assert "careless0" not in set(kept.ratings["rater"]) | set(kept.choices["rater"])
    assert (kept.ratings["kind"] == "trial").all() and not kept.ratings["system"].isin([HIDDEN_REFERENCE, ANCHOR]).any()
    controls = {(c["criterion"], c["system"]): c["mean"] for c in result["controls"]}
    assert controls[("harmony", HIDDEN_REFERENCE)] > 3.5 > 1.5 > controls[("harmony", ANCHOR)]


def test_careless_rater_scoring_the_anchor_higher_is_flagged():
    ratings = pd.DataFrame(
        [
            ("x", "m1", "p", system, c, score, "trial")
            for c in CRITERIA
            for system, score in ((ANCHOR, 4), (HIDDEN_REFERENCE, 2))
        ],
        columns=["rater", "item", "prompt", "system", "criterion", "score", "kind"],
    )
    assert flagged_raters(ratings, pd.DataFrame(), REFERENCE) == {"x"}


def test_raters_needed_matches_the_textbook():
    # Cohen / G*Power: a paired t-test needs 34 pairs for d_z = 0.5 at alpha 0.05 and 80 % power.
    assert raters_for_power(0.5) == 34
    assert raters_for_power(-0.5) == 34
    assert raters_for_power(0.8) == 15
    assert raters_for_power(0.0) is None
    assert raters_for_power(0.001) is None  # over the cap


def test_raters_needed_on_data():
    rows = []
    for i, diff in enumerate([1, 0, 2, 1, -1, 1]):
        rows += [
            (f"r{i}", "it", "p", "a", "harmony", 3 + diff, "trial"),
            (f"r{i}", "it", "p", "b", "harmony", 3, "trial"),
        ]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "prompt", "system", "criterion", "score", "kind"])
    line = raters_needed(ratings, "harmony", "a", "b")
    d = np.array([1, 0, 2, 1, -1, 1])
    assert line["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert line["raters"] == 6 and line["more"] == line["n_needed"] - 6
    assert f"{line['n_needed']} raters give 80 % power" in line["sentence"]
    same = ratings.assign(score=3)
    none = raters_needed(same, "harmony", "a", "b")
    assert none["n_needed"] is None and "no effect" in none["sentence"]


def test_analysis_is_json_and_says_power(result):
    json.dumps(result, allow_nan=False)
    assert result["systems"] == [REFERENCE, *sorted(set(STRENGTHS) - {REFERENCE})]
    assert len(result["power"]) == len(CRITERIA) * 3
    assert all("raters give 80 % power" in p["sentence"] or "enough" in p["sentence"] for p in result["power"])
    assert set(analysis_figures(result)) == {"mos", "normalised", "bradley_terry", "controls", "pairwise"}


def test_report_html(result):
    page = report_html(result, title="Study <1> & co")
    assert "<title>Study &lt;1&gt; &amp; co</title>" in page and "Study <1>" not in page
    assert page.count("plotly.js v") == 1
    assert all(system in page for system in STRENGTHS)
    assert "Krippendorff" in page and "Holm" in page and "careless0" in page


def test_report_escapes_data():
    ratings, choices = simulate(seed=5, n_raters=3, n_prompts=1)
    evil = "<script>alert(1)</script>"
    result = analyse(ratings.replace("no_fgg", evil), choices, reference=REFERENCE, criteria=CRITERIA, n_boot=20)
    page = report_html(result, "t")
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("n_raters", [0, 1])
def test_empty_and_single_rater(n_raters):
    ratings, choices = simulate(seed=6, n_raters=n_raters)
    result = analyse(ratings, choices, reference=REFERENCE, criteria=CRITERIA, n_boot=20)
    json.dumps(result, allow_nan=False)
    page = report_html(result, "Study")
    if n_raters == 0:
        assert result["message"] == NO_ANSWERS and NO_ANSWERS in page and result["counts"]["raters"] == 0
        assert analysis_figures(result) == {} and "plotly.js v" not in page
    else:
        assert result["message"] == "" and all(system in page for system in STRENGTHS)
        assert all(a["alpha"] is None for a in result["agreement"].values())
        assert all("undefined" in p["sentence"] for p in result["power"])


def test_empty_frames_without_columns():
    result = analyse(pd.DataFrame(), None, reference=None)
    assert result["message"] == NO_ANSWERS and result["criteria"] == []
    assert "no answers yet" in report_html(result, "x")
