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


def at_once(n: int, call) -> list:
    """``call(k)`` for k < n from n threads released together; their results (any order), or
    the first error raised in a thread."""
    results, errors = [], []
    barrier = threading.Barrier(n)

    def go(k):
        try:
            barrier.wait()
            results.append(call(k))
        except Exception as err:  # re-raised below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


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
    results = at_once(8, lambda k: store.submit(rater, pair, scores(1 + k % 5), scores(2), "A"))
    assert len(store.answers()) == 1
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


def test_rater_tokens_never_start_like_a_formula(monkeypatch):
    """A token starting with '-' (1 in 64 of URL-safe tokens) would be exported as "'-..." and no
    longer match what the rater holds; the first character is drawn until it is safe."""
    from demo.listening import store as store_module
    from demo.listening.export import FORMULA_STARTS

    drawn = iter(["-abc", "=abc", "Xabc"])
    monkeypatch.setattr(store_module.secrets, "token_urlsafe", lambda n: next(drawn))
    assert store_module._rater_token() == "Xabc"
    monkeypatch.undo()
    assert not any(store_module._rater_token()[:1] in FORMULA_STARTS for _ in range(2000))


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

    from demo.listening.clips import ClipServer, RenderCache

    pool = midi_pool(tmp_path / "pool", {5: "no_fgg"})
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", pool)
    clips = ClipServer(store, tmp_path / "clips", renders=RenderCache(tmp_path / "cache"))
    clips.prerender().join(timeout=120)
    contents = {path.read_bytes() for path in pool.glob("*.mid")}  # both of this pool's files are alike
    assert len(list((tmp_path / "cache" / "rendered").glob("*.wav"))) == len(contents)  # one render per content
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


def test_a_replayed_answer_is_stored_once_for_the_pair_heard(store):
    """A repeat of an answer (the same pair token) — identical or with other ratings — writes
    nothing and returns the stored answer and the same next pair: progress does not move."""
    rater = store.new_rater()
    first = store.next_trial(rater)
    token = store.pair_token(rater, first.pair_id)
    answered = store.answer(rater, token, scores(4), scores(2), "A")
    assert answered.first and answered.pair_id == first.pair_id and answered.next.number == 2
    assert answered.answer == {"a": scores(4), "b": scores(2), "preference": "A"}
    for ratings in ((scores(4), scores(2), "A"), (scores(1), scores(5), "B")):
        again = store.answer(rater, token, *ratings)
        assert not again.first and again.answer == answered.answer and again.next == answered.next
    rows = store.answers()
    assert len(rows) == 1 and rows[0]["pair"] == f"p{first.pair_id - 1}" and rows[0]["preferred"] == first.system_a
    assert store.answered(rater) == {first.pair_id} and store.next_trial(rater) == answered.next


def test_a_replay_racing_itself_is_stored_once(store):
    rater = store.new_rater()
    first = store.next_trial(rater)
    token = store.pair_token(rater, first.pair_id)
    results = at_once(8, lambda k: store.answer(rater, token, scores(1 + k % 5), scores(2), "AB"[k % 2]))
    assert len(results) == 8 and len(store.answers()) == 1
    assert sum(r.first for r in results) == 1  # exactly one request wrote it
    assert all(r.answer == results[0].answer and r.next == results[0].next for r in results)
    assert store.answered(rater) == {first.pair_id} and results[0].next.number == 2


def test_pair_tokens_of_other_raters_or_garbled_are_refused(store):
    a, b = store.new_rater(), store.new_rater()
    pair = store.next_trial(a).pair_id
    token_a, token_b = store.pair_token(a, pair), store.pair_token(b, pair)
    assert token_a != token_b and len(token_a) == 32
    garbled = [token_b, "", None, 123, token_a[:-1], token_a + "0", token_a.upper(), "ä" * 32, "0" * 32, str(pair)]
    for bad in garbled:
        with pytest.raises(ValueError, match=r"^this answer is not for a pair you were given [^\n]*$"):
            store.answer(a, bad, scores(3), scores(3), "same")
    with pytest.raises(ValueError, match="not for a pair you were given"):
        store.answer(b, token_a, scores(3), scores(3), "same")  # a's token under b's session
    assert store.answers() == []
    assert store.answer(a, token_a, scores(3), scores(3), "same").first  # the right one still works


class StubClips:
    """Clips without rendering: one tiny WAV per (rater, pair, side), named by the clip id."""

    def __init__(self, store, folder):
        self.store, self.folder = store, folder
        folder.mkdir(exist_ok=True)

    def clip(self, rater, pair_id, side, midi_path):
        from scipy.io import wavfile

        out = self.folder / f"{self.store.clip_id(rater, pair_id, side)}.wav"
        if not out.is_file():
            wavfile.write(out, 8000, np.zeros(80, dtype=np.int16))
        return str(out)


class ParticipantBrowser:
    """The participant page driven as a browser does: each event through ``Blocks.process_api``
    with the values the page holds; each response updates them."""

    def __init__(self, store, tmp_path):
        import gradio as gr

        from demo.tabs.listen import build_participant_page

        with gr.Blocks() as self.blocks:
            self.page = build_participant_page(store, StubClips(store, tmp_path / "clips"))
        self.values = {block: getattr(block, "value", None) for block in self.blocks.blocks.values()}

    def fn(self, name):
        return next(f for f in self.blocks.fns.values() if f.name == name)

    def request(self, name):
        """The inputs a browser would send for event ``name`` now."""
        return [self.values[block] for block in self.fn(name).inputs]

    def send(self, name, inputs=None):
        """Send ``inputs`` (default: the page's current values); apply and return the response."""
        import asyncio

        from gradio.state_holder import SessionState

        fn = self.fn(name)
        inputs = self.request(name) if inputs is None else inputs
        out = asyncio.run(self.blocks.process_api(fn, inputs, state=SessionState(self.blocks)))
        response = {}
        for block, value in zip(fn.outputs, out["data"], strict=True):
            if not (isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1):
                response[block] = value.get("value") if isinstance(value, dict) and "__type__" in value else value
                self.values[block] = response[block]
        return response

    def rate(self, a, b, preference):
        for c in CRITERIA:
            self.values[self.page.ratings_a[c]], self.values[self.page.ratings_b[c]] = a, b
        self.values[self.page.preference] = preference


@pytest.fixture
def started(store, tmp_path):
    """A participant who has agreed and pressed Start: pair 1 on screen."""
    browser = ParticipantBrowser(store, tmp_path)
    browser.values[browser.page.consent] = True
    shown = browser.send("start")
    assert shown[browser.page.status] == "**Pair 1 of 6**"
    return browser


def test_a_replayed_submit_through_the_page_is_stored_once_for_the_pair_heard(store, started):
    """The reported bug: submit, get the acknowledgement, send the identical request again —
    it must not be stored as the answer to pair 2 (and must not move the rater to pair 3)."""
    page, rater = started.page, started.values[started.page.token]
    heard = store.next_trial(rater)
    started.rate(4, 2, "A")
    request = started.request("submit")
    ack = started.send("submit")
    assert ack[page.status] == "**Pair 2 of 6**" and ack[page.pair_token]
    for replay in (request, [3 if isinstance(v, int) else ("B" if v == "A" else v) for v in request]):
        again = started.send("submit", list(replay))  # the same request (then with other ratings)
        assert again[page.status] == "**Pair 2 of 6**" and again[page.pair_token] == ack[page.pair_token]
    rows = store.answers()
    assert len(rows) == 1 and rows[0]["pair"] == f"p{heard.pair_id - 1}" and rows[0]["preferred"] == heard.system_a
    assert store.answered(rater) == {heard.pair_id} and store.next_trial(rater).number == 2
    started.rate(3, 3, "same")  # the next real answer is for pair 2
    assert started.send("submit")[page.status] == "**Pair 3 of 6**" and len(store.answers()) == 2


def test_concurrent_replays_through_the_page_are_stored_once(store, started):
    page, rater = started.page, started.values[started.page.token]
    started.rate(5, 1, "A")
    request = started.request("submit")
    responses = at_once(6, lambda _: started.send("submit", list(request)))
    assert len(responses) == 6 and len(store.answers()) == 1
    assert {(r[page.status], r[page.pair_token]) for r in responses} == {
        ("**Pair 2 of 6**", store.pair_token(rater, store.next_trial(rater).pair_id))
    }
    assert store.next_trial(rater).number == 2


def test_the_page_refuses_a_pair_token_not_given_to_the_rater(store, started):
    page, rater = started.page, started.values[started.page.token]
    other = store.new_rater()
    started.rate(4, 4, "same")
    for bad in (store.pair_token(other, store.next_trial(other).pair_id), "garbled", "0" * 32):
        started.values[page.pair_token] = bad
        refused = started.send("submit")
        assert set(refused) == {page.notice}  # a message, nothing else changes
        assert refused[page.notice].startswith("⚠️ this answer is not for a pair you were given")
        assert "\n" not in refused[page.notice] and "Traceback" not in refused[page.notice]
    assert store.answers() == [] and store.next_trial(rater).number == 1


def test_the_page_checks_what_it_never_sends_before_use(store, started):
    """Issue 22, finding 3: a submit with a rating of 0, 3.5, NaN, True, "4" or 10 MB, an
    unknown preference or an oversized pair token is answered in the page's notice, naming the
    value (cut), and nothing is stored; Gradio's own refusal named no rating and echoed it all."""
    page = started.page
    started.rate(4, 4, "same")
    cut = "'" + "x" * 39 + "… (10,000,000 characters)"
    for bad, shown in ((0, "0"), (3.5, "3.5"), (float("nan"), "nan"), (True, "True"), ("4", "'4'"), ("x" * 10**7, cut)):
        started.values[page.ratings_a["harmony"]] = bad
        assert started.send("submit") == {page.notice: f"⚠️ A · harmony must be one of 1, 2, 3, 4, 5 (got {shown})"}
    started.rate(4, 4, "C")
    assert started.send("submit") == {page.notice: "⚠️ preference must be one of A, B, same (got 'C')"}
    started.rate(4, 4, "same")
    started.values[page.pair_token] = "f" * 100_000
    assert started.send("submit") == {page.notice: "⚠️ pair_token is 100,000 characters long; the limit is 64"}
    assert store.answers() == []


def test_the_page_checks_the_consent_and_the_token_before_use(store, tmp_path):
    """The consent must be a boolean (12345 is not consent), the kept rater token short text or null."""
    browser = ParticipantBrowser(store, tmp_path)
    page = browser.page
    for consent, token, message in (
        (12345, None, "consent must be true or false (got 12345)"),
        ("false", None, "consent must be true or false (got 'false')"),
        (True, 12345, "rater_token must be text (got 12345)"),
        (True, ["x"] * 1000, "rater_token must be text (got ['x', 'x', 'x', 'x', 'x', 'x', 'x', 'x',… (1,000 items))"),
        (True, "t" * 1000, "rater_token is 1,000 characters long; the limit is 64"),
    ):
        browser.values[page.consent], browser.values[page.token] = consent, token
        assert browser.send("start") == {page.notice: f"⚠️ {message}"}
    browser.values[page.consent], browser.values[page.token] = True, None
    assert browser.send("start")[page.status] == "**Pair 1 of 6**"
