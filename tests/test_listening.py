import csv
import io
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from demo.listening import CRITERIA, AdminGate, Base, ListeningStore, Rater

POSTGRES_URL = os.environ.get("FGG_TEST_POSTGRES_URL")  # e.g. postgresql+psycopg://fgg:fgg@127.0.0.1/fgg_test


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The store on SQLite and on a live PostgreSQL server (``FGG_TEST_POSTGRES_URL``; with
    ``FGG_REQUIRE_POSTGRES=1``, set by .ci/run, a missing server fails instead of skipping)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'answers.db'}"
    elif POSTGRES_URL:
        url = POSTGRES_URL
        engine = create_engine(url)
        Base.metadata.drop_all(engine)  # a fresh schema per test
        engine.dispose()
    elif os.environ.get("FGG_REQUIRE_POSTGRES") == "1":
        pytest.fail("FGG_REQUIRE_POSTGRES=1 but FGG_TEST_POSTGRES_URL is not set")
    else:
        pytest.skip("no PostgreSQL server: set FGG_TEST_POSTGRES_URL")
    pool = tmp_path / "pool"
    pool.mkdir()
    pairs = [
        {
            "key": f"p{i}",
            "segment": i,
            "system_x": "fgg",
            "system_y": ["no_fgg", "inpaint"][i % 2],
            "midi_x": f"p{i}_fgg.mid",
            "midi_y": f"p{i}_base.mid",
        }
        for i in range(6)
    ]
    (pool / "manifest.json").write_text(json.dumps({"pairs": pairs}))
    store = ListeningStore(url, pool)
    yield store
    store.engine.dispose()


def scores(v):
    return {c: v for c in CRITERIA}


def test_plan_is_blind_random_and_stable(store):
    a, b = "rater-one", "rater-two"  # fixed ids: the shuffle is a function of the id, so this is deterministic
    plan_a = store.plan(a)
    assert [t.number for t in plan_a] == list(range(1, 7)) and all(t.total == 6 for t in plan_a)
    assert plan_a == store.plan(a)  # stable across reloads
    assert [t.pair_id for t in plan_a] != [t.pair_id for t in store.plan(b)] or [t.system_a for t in plan_a] != [
        t.system_a for t in store.plan(b)
    ]
    assert {t.system_a for t in plan_a} | {t.system_b for t in plan_a} == {"fgg", "no_fgg", "inpaint"}
    assert any(t.system_a != "fgg" for t in plan_a)  # FGG is not always "A"


def test_submit_progress_and_validation(store):
    rater = store.new_rater()
    first = store.next_trial(rater)
    stored = store.submit(rater, first.pair_id, scores(4), scores(2), "A")
    assert stored == {"a": scores(4), "b": scores(2), "preference": "A"}
    assert store.answered(rater) == {first.pair_id}
    assert store.next_trial(rater).number == 2
    second = store.next_trial(rater).pair_id
    for bad in (6, 0, 3.5, True, float("nan"), "4", None):
        with pytest.raises(ValueError, match=r"rating 'A · harmony' must be a whole number 1-5"):
            store.submit(rater, second, {**scores(3), "harmony": bad}, scores(2), "A")
    store.submit(rater, second, scores(3.0), scores(np.int64(2)), "B")  # integral floats and numpy ints pass
    with pytest.raises(ValueError, match="preference must be one of A, B, same"):
        store.submit(rater, first.pair_id, scores(3), scores(2), "C")
    with pytest.raises(ValueError, match="unknown rater token"):
        store.submit("not-registered", first.pair_id, scores(3), scores(2), "A")
    # a second answer to the same pair returns the first, never adds or changes a row
    again = store.submit(rater, first.pair_id, scores(1), scores(5), "B")
    assert again == stored
    assert len(store.answers()) == 2


def test_same_pair_race_is_idempotent(store):
    """One rater submitting the same pair from 8 threads at once: one row, every caller gets
    the stored answer, nobody gets an error."""
    rater = store.new_rater()
    pair = store.next_trial(rater).pair_id
    results, errors = [], []
    barrier = threading.Barrier(8)

    def go(k):
        try:
            barrier.wait()
            results.append(store.submit(rater, pair, scores(1 + k % 5), scores(2), "A"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(store.answers()) == 1
    assert all(r == results[0] for r in results)


def test_concurrent_submissions_lose_nothing(store):
    raters = [store.new_rater() for _ in range(8)]
    errors = []

    def rate_everything(rater):
        try:
            for trial in store.plan(rater):
                store.submit(
                    rater,
                    trial.pair_id,
                    scores(4 if trial.system_a == "fgg" else 2),
                    scores(2 if trial.system_a == "fgg" else 4),
                    "A" if trial.system_a == "fgg" else "B",
                )
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


def test_export_is_formula_safe_utc_csv_and_json(store):
    rater = store.new_rater()
    store.submit(rater, store.next_trial(rater).pair_id, scores(3), scores(3), "same")
    with Session(store.engine) as session:  # a hostile-looking id, as an older database may hold
        session.add(Rater(id="=HYPERLINK(1)", created_at=datetime.now(UTC)))
        session.commit()
    store.submit("=HYPERLINK(1)", store.next_trial("=HYPERLINK(1)").pair_id, scores(2), scores(4), "B")
    rows = list(csv.DictReader(io.StringIO(store.export_csv())))
    assert len(rows) == 2 and {r["rater"] for r in rows} == {rater, "'=HYPERLINK(1)"}
    for r in rows:
        moment = datetime.fromisoformat(r["submitted_at"])
        assert moment.utcoffset() == timedelta(0)
    doc = json.loads(store.export_json())
    assert len(doc["answers"]) == 2 and doc["exported_at"].endswith("+00:00")


def test_admin_gate_backs_off_exponentially(monkeypatch):
    now = [0.0]
    gate = AdminGate("s3cret", clock=lambda: now[0])
    gate.check("s3cret", "1.2.3.4")
    for expected_wait in (1, 2, 4):
        with pytest.raises(PermissionError, match="wrong admin password"):
            gate.check("guess", "1.2.3.4")
        with pytest.raises(PermissionError, match=f"try again in {expected_wait} s"):
            gate.check("s3cret", "1.2.3.4")  # even the right password waits out the lock
        now[0] += expected_wait
    with pytest.raises(PermissionError, match="wrong admin password"):
        gate.check("x", "5.6.7.8")  # another client is not locked by the first one's failures
    gate.check("s3cret", "1.2.3.4")  # after the wait the right password works and resets the count
    with pytest.raises(PermissionError, match="wrong admin password"):
        gate.check("guess", "1.2.3.4")
    with pytest.raises(PermissionError, match="try again in 1 s"):
        gate.check("s3cret", "1.2.3.4")
    monkeypatch.delenv("FGG_ADMIN_PASSWORD", raising=False)
    with pytest.raises(PermissionError, match="disabled"):
        AdminGate().check("anything", "x")


def test_rater_tokens_are_issued_never_chosen(store):
    a, b = store.new_rater(), store.new_rater()
    assert a != b and len(a) == 24 and store.resume_rater(a) == a
    for guess in ("alice", "-A1", "ａｌｉｃｅ", "", a[:-1], "x'; DROP TABLE ratings; --", "x" * 1000):
        with pytest.raises(ValueError, match="unknown rater token"):
            store.resume_rater(guess)


def test_clip_ids_are_opaque_and_per_rater(store):
    a, b = store.new_rater(), store.new_rater()
    trial = store.next_trial(a)
    ids = {store.clip_id(r, trial.pair_id, side) for r in (a, b) for side in "AB"}
    assert len(ids) == 4 and all(len(i) == 24 and set(i) <= set("0123456789abcdef") for i in ids)
    assert store.clip_id(a, trial.pair_id, "A") == store.clip_id(a, trial.pair_id, "A")


def test_database_url_and_ephemeral_storage_warning(monkeypatch, tmp_path):
    from demo.listening import store as L

    monkeypatch.setenv("FGG_DB_URL", "postgresql://u:p@db.example/answers")
    assert L.database_url() == "postgresql+psycopg://u:p@db.example/answers"
    monkeypatch.setenv("FGG_DB_URL", "postgres://u:p@db.example/answers")
    assert L.database_url() == "postgresql+psycopg://u:p@db.example/answers"
    monkeypatch.delenv("FGG_DB_URL")
    monkeypatch.setattr(L, "PERSISTENT_DB", tmp_path / "data" / "listening.db")
    monkeypatch.setattr(L, "DEFAULT_DB", tmp_path / "app" / "listening.db")
    assert L.database_url() == f"sqlite:///{tmp_path / 'app' / 'listening.db'}"  # no /data volume
    (tmp_path / "data").mkdir()
    assert L.database_url() == f"sqlite:///{tmp_path / 'data' / 'listening.db'}"
    monkeypatch.setenv("SPACE_ID", "user/fgg-music")
    assert L.storage_warning(f"sqlite:///{tmp_path / 'data' / 'listening.db'}") is None
    assert "ephemeral disk" in L.storage_warning(f"sqlite:///{tmp_path / 'app' / 'listening.db'}")
    assert L.storage_warning("postgresql+psycopg://u:p@db/answers") is None
    monkeypatch.delenv("SPACE_ID")
    assert L.storage_warning(f"sqlite:///{tmp_path / 'app' / 'listening.db'}") is None


def midi_pool(folder: Path, baselines: dict[int, str]) -> Path:
    """A pool of real MIDI pairs: for each segment, FGG vs its baseline, both files the
    segment's own melody + accompaniment, named ``p<segment>_<system>.mid``."""
    from fgg.data import load_valid_segments
    from fgg.pianoroll import rolls_to_midi

    seg = load_valid_segments()
    folder.mkdir()
    pairs = []
    for i, baseline in baselines.items():
        for system in ("fgg", baseline):
            rolls_to_midi({"melody": seg["melody"][i], "accompaniment": seg["accompaniment"][i]}, 120.0).write(
                str(folder / f"p{i}_{system}.mid")
            )
        pairs.append(
            {
                "key": f"p{i}",
                "segment": i,
                "system_x": "fgg",
                "system_y": baseline,
                "midi_x": f"p{i}_fgg.mid",
                "midi_y": f"p{i}_{baseline}.mid",
            }
        )
    (folder / "manifest.json").write_text(json.dumps({"pairs": pairs}))
    return folder


def test_attention_check_flags_and_excludes_careless_raters(tmp_path):
    import pretty_midi

    from demo.listening import ATTENTION_SYSTEM, add_attention_pair

    pool = midi_pool(tmp_path / "pool", {0: "no_fgg", 1: "inpaint"})
    pair = add_attention_pair(pool)
    assert add_attention_pair(pool) == pair and len(json.loads((pool / "manifest.json").read_text())["pairs"]) == 3
    original, degraded = (pretty_midi.PrettyMIDI(str(pool / pair[k])) for k in ("midi_x", "midi_y"))
    for a, b in zip(original.instruments, degraded.instruments, strict=True):
        shift = 0 if "melody" in a.name.lower() else 1
        assert [n.pitch + shift for n in a.notes] == [n.pitch for n in b.notes]

    store = ListeningStore(f"sqlite:///{tmp_path / 'answers.db'}", pool)
    careful, careless = store.new_rater(), store.new_rater()
    for rater in (careful, careless):
        for trial in store.plan(rater):
            bad = ATTENTION_SYSTEM in (trial.system_a, trial.system_b)
            fooled = bad and rater == careless
            good_side = "A" if trial.system_a == "fgg" else "B"
            pref = {"A": "B", "B": "A"}[good_side] if fooled else good_side
            store.submit(
                rater, trial.pair_id, scores(4 if good_side == "A" else 2), scores(2 if good_side == "A" else 4), pref
            )
    result = store.results()
    assert result["raters"] == {"raters": 2, "flagged_raters": 1, "answers_used": 2, "answers": 6}
    assert {s["system"] for s in result["systems"]} == {"fgg", "no_fgg", "inpaint"}
    assert next(s for s in result["systems"] if s["system"] == "fgg")["answers"] == 2


def test_cli_results_plots_and_password_export(tmp_path, monkeypatch, capsys):
    from demo.listening import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FGG_DB_URL", url)
    store = ListeningStore(url)  # the shipped pool (assets/listening), attention pair included
    assert any(p.system_y == "degraded" for p in store.pairs())
    rater = store.new_rater()
    for trial in store.plan(rater)[:4]:
        store.submit(rater, trial.pair_id, scores(4), scores(3), "A")
    html = tmp_path / "plots.html"
    assert main(["results", "--html", str(html)]) == 0
    assert '"systems"' in capsys.readouterr().out and "plotly" in html.read_text()
    monkeypatch.setenv("FGG_ADMIN_PASSWORD", "s3cret")
    assert main(["export", "--password", "nope"]) == 2
    assert "wrong admin password" in capsys.readouterr().err
    before = set(tmp_path.parent.iterdir())
    assert main(["export", "--password", "s3cret", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["answers"]) == 4
    assert set(tmp_path.parent.iterdir()) == before  # nothing written to disk


def test_clip_server_prerenders_and_serves_per_rater_bytes(tmp_path):
    from scipy.io import wavfile

    from demo.tabs.listen import ClipServer

    pool = midi_pool(tmp_path / "pool", {5: "no_fgg"})
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", pool)
    clips = ClipServer(store, tmp_path / "clips")
    clips.prerender().join(timeout=120)
    assert len(list((tmp_path / "clips" / "rendered").glob("*.wav"))) == 2
    store._clip_secret = b"fixed secret for a deterministic test"
    pair = store.pairs()[0].id
    files = [clips.clip(r, pair, "A", str(pool / "p5_fgg.mid")) for r in ("rater-1", "rater-2")]
    assert all("fgg" not in Path(f).name and "p5" not in Path(f).name for f in files)
    (rate_a, audio_a), (rate_b, audio_b) = (wavfile.read(f) for f in files)
    assert rate_a == rate_b and len(audio_a) != len(audio_b)
    n = min(len(audio_a), len(audio_b))
    np.testing.assert_array_equal(audio_a[:n], audio_b[:n])  # the same music, only the silence differs


def test_new_sessions_are_limited_per_client():
    from demo.tabs.listen import ClientLimiter

    now = [0.0]
    limiter = ClientLimiter(3, window=3600, clock=lambda: now[0])
    assert [limiter.allow("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("5.6.7.8")  # per client
    now[0] += 3601
    assert limiter.allow("1.2.3.4")  # the window slides
