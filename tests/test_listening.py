import json
import threading

import pytest

from demo.listening import CRITERIA, ListeningStore


@pytest.fixture()
def store(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    pairs = [{"key": f"p{i}", "segment": i, "system_x": "fgg", "system_y": ["no_fgg", "inpaint"][i % 2],
              "midi_x": f"p{i}_fgg.mid", "midi_y": f"p{i}_base.mid"} for i in range(6)]
    (pool / "manifest.json").write_text(json.dumps({"pairs": pairs}))
    return ListeningStore(f"sqlite:///{tmp_path / 'answers.db'}", pool)


def scores(v):
    return {c: v for c in CRITERIA}


def test_plan_is_blind_random_and_stable(store):
    a, b = store.new_rater(), store.new_rater()
    plan_a = store.plan(a)
    assert [t.number for t in plan_a] == list(range(1, 7)) and all(t.total == 6 for t in plan_a)
    assert plan_a == store.plan(a)  # stable across reloads
    assert [t.pair_id for t in plan_a] != [t.pair_id for t in store.plan(b)] or \
        [t.system_a for t in plan_a] != [t.system_a for t in store.plan(b)]
    assert {t.system_a for t in plan_a} | {t.system_b for t in plan_a} == {"fgg", "no_fgg", "inpaint"}
    assert any(t.system_a != "fgg" for t in plan_a)  # FGG is not always "A"


def test_submit_progress_and_validation(store):
    rater = store.new_rater()
    first = store.next_trial(rater)
    store.submit(rater, first.pair_id, scores(4), scores(2), "A")
    assert store.answered(rater) == {first.pair_id}
    assert store.next_trial(rater).number == 2
    with pytest.raises(ValueError, match="rating 'harmony' must be an integer 1-5"):
        store.submit(rater, first.pair_id, {**scores(3), "harmony": 6}, scores(2), "A")
    with pytest.raises(ValueError, match="preference"):
        store.submit(rater, first.pair_id, scores(3), scores(2), "C")
    with pytest.raises(ValueError, match="unknown rater"):
        store.submit("not-registered", first.pair_id, scores(3), scores(2), "A")
    # re-answering updates the rater's own answer, never adds a second one
    store.submit(rater, first.pair_id, scores(1), scores(5), "B")
    answers = store.answers()
    assert len(answers) == 1 and answers[0]["preferred"] == first.system_b


def test_concurrent_submissions_lose_nothing(store):
    raters = [store.new_rater() for _ in range(8)]
    errors = []

    def rate_everything(rater):
        try:
            for trial in store.plan(rater):
                store.submit(rater, trial.pair_id, scores(4 if trial.system_a == "fgg" else 2),
                             scores(2 if trial.system_a == "fgg" else 4), "A" if trial.system_a == "fgg" else "B")
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=rate_everything, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    answers = store.answers()
    assert len(answers) == 8 * 6
    assert {(a["rater"], a["pair"]) for a in answers} == {(r, f"p{i}") for r in raters for i in range(6)}
    result = store.results()
    fgg = next(s for s in result["systems"] if s["system"] == "fgg")
    assert fgg["answers"] == 48 and fgg["harmony"] == 4.0
    no_fgg = next(t for t in result["preference"] if t["baseline"] == "no_fgg")
    assert no_fgg["fgg_preferred"] == 24 and no_fgg["sign_test_p"] < 1e-6


def test_export_needs_the_password(store, monkeypatch):
    rater = store.new_rater()
    store.submit(rater, store.next_trial(rater).pair_id, scores(3), scores(3), "same")
    monkeypatch.delenv("FGG_ADMIN_PASSWORD", raising=False)
    with pytest.raises(PermissionError, match="disabled"):
        store.export_csv("anything")
    monkeypatch.setenv("FGG_ADMIN_PASSWORD", "s3cret")
    with pytest.raises(PermissionError, match="wrong admin password"):
        store.export_csv("guess")
    csv_text = store.export_csv("s3cret")
    assert csv_text.splitlines()[0].startswith("rater,pair") and len(csv_text.splitlines()) == 2


def test_rater_ids(store):
    assert store.ensure_rater("") != store.ensure_rater("")
    assert store.ensure_rater("alice-1") == "alice-1"
    with pytest.raises(ValueError):
        store.ensure_rater("x'; DROP TABLE ratings; --")
