"""The listening studies' store and participant page: blind, idempotent, safe under
concurrent requests, on SQLite and PostgreSQL; any design, criteria and number of clips."""

import csv
import io
import json
import os
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from demo.listening import AdminGate, Base, ListeningStore, Rater, load_built, load_study
from demo.listening.analysis import analyse
from demo.listening.export import answers_csv, answers_json
from demo.listening.report import analysis_figures
from demo.listening.tidy import export_rows

POSTGRES_URL = os.environ.get("FGG_TEST_POSTGRES_URL")  # e.g. postgresql+psycopg://fgg:fgg@127.0.0.1/fgg_test
CRITERIA = ("creativity", "harmony", "naturalness")


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


def study_file(folder: Path, study_id: str, design: str, systems: list[str], **extra) -> Path:
    """A study file: ``systems`` of ours, the CRITERIA on 1-5, a preference question."""
    lines = [
        'title = "A study"',
        'instructions = "Listen and rate."',
        'consent = "I agree."',
        f'design = "{design}"',
        f'reference = "{systems[0]}"',
        *(f"{key} = {json.dumps(value)}" for key, value in extra.items()),
        "[prompts]",
        "count = 6",
        *(f'[[systems]]\nname = "{s}"\nsystem = "fgg"' for s in systems),
        *(f'[[criteria]]\nname = "{c}"\nquestion = "{c}?"' for c in CRITERIA),
        '[preference]\nquestion = "Which do you prefer?"',
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{study_id}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def built(folder: Path, study_id: str = "pairs", design: str = "reference", items: list | None = None, **extra):
    """A study and a build of it (``items``: (prompt, kind, systems) per item; default: six
    pairs, FGG against no_fgg and inpaint in turn), without sampling or audio."""
    systems = ["fgg", "no_fgg", "inpaint"]
    items = items or [(f"p{i}", "trial", ("fgg", systems[1 + i % 2])) for i in range(6)]
    study = load_study(study_file(folder, study_id, design, systems, **extra))
    out = folder / f"{study_id}-built"
    (out / "midi").mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "key": f"{prompt}:{kind}:{'|'.join(clips)}",
            "prompt": prompt,
            "kind": kind,
            "clips": [{"system": s, "midi": f"{prompt}_{s}.mid"} for s in clips],
        }
        for prompt, kind, clips in items
    ]
    manifest = {"study": study.id, "config_hash": study.config_hash, "prompts": [], "items": entries}
    (out / "items.json").write_text(json.dumps(manifest), encoding="utf-8")
    return load_built(study, out)


def midi_study(folder: Path, prompts: dict[int, str]):
    """A built pairwise study of real MIDI: per POP909 segment, FGG against the given system,
    both files the segment's own melody and accompaniment (so the two are alike)."""
    from fgg.data import load_valid_segments
    from fgg.pianoroll import rolls_to_midi

    study = built(folder, items=[(f"p{seg}", "trial", ("fgg", other)) for seg, other in prompts.items()])
    segments = load_valid_segments()
    for seg, other in prompts.items():
        for system in ("fgg", other):
            tracks = {"melody": segments["melody"][seg], "accompaniment": segments["accompaniment"][seg]}
            rolls_to_midi(tracks, 120.0).write(str(study.folder / "midi" / f"p{seg}_{system}.mid"))
    return study


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A database URL: SQLite, and a live PostgreSQL server (``FGG_TEST_POSTGRES_URL``; with
    ``FGG_REQUIRE_POSTGRES=1``, set by .ci/run, a missing server fails instead of skipping)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'answers.db'}"
    if POSTGRES_URL:
        engine = create_engine(POSTGRES_URL)
        Base.metadata.drop_all(engine)  # a fresh schema per test
        engine.dispose()
        return POSTGRES_URL
    if os.environ.get("FGG_REQUIRE_POSTGRES") == "1":
        pytest.fail("FGG_REQUIRE_POSTGRES=1 but FGG_TEST_POSTGRES_URL is not set")
    pytest.skip("no PostgreSQL server: set FGG_TEST_POSTGRES_URL")


@pytest.fixture
def store(database, tmp_path):
    """The pairwise study's view of a store (6 pairs, every rater rates all)."""
    listening = ListeningStore(database, [built(tmp_path)])
    yield listening.study("pairs")
    listening.engine.dispose()


def scores(a, b):
    """Scores of A and B on every criterion, as ``StudyStore.answer`` takes them."""
    return {c: [a, b] for c in CRITERIA}


def answer_all(store, rater, choose=lambda trial: "A"):
    """The rater answers every screen: A gets 4, B 2 (or by ``choose``)."""
    while (trial := store.next_trial(rater)) is not None:
        store.answer(rater, store.item_token(rater, trial.item_id), scores(4, 2), choose(trial))


def test_a_raters_screens_are_blind_random_and_stable(store):
    store.store._secret = b"a fixed secret: the clip orders below are then always the same"
    a, b = "rater-one", "rater-two"
    with Session(store.engine) as session:
        session.add_all([Rater(id=r, study="pairs", created_at=datetime.now(UTC)) for r in (a, b)])
        session.commit()
    first = store.next_trial(a)
    assert first == store.next_trial(a)  # a reload shows the same screen
    assert first.number == 1 and first.total == 6 and first.labels == ("A", "B")
    answer_all(store, a)
    answer_all(store, b)
    plan_a, plan_b = store.trials(a), store.trials(b)
    assert [t.number for t in plan_a] == list(range(1, 7))
    assert sorted(t.item_id for t in plan_a) == sorted(t.item_id for t in plan_b)  # every item once each
    assert [t.systems for t in plan_a] != [t.systems for t in plan_b]  # order and sides differ
    assert any(t.systems[0] != "fgg" for t in plan_a)  # FGG is not always "A"
    assert store.next_trial(a) is None


def test_screens_go_to_the_least_answered_items_first(tmp_path):
    """Ten raters, 3 screens each, 6 items: every item is heard by exactly 5 raters."""
    study = built(tmp_path, items_per_rater=3)
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", [study]).study("pairs")
    for _ in range(10):
        answer_all(store, store.new_rater())
    counts = store.progress()
    assert counts["answers"] == 30 and counts["least_answered"] == counts["most_answered"] == 5


def test_answers_progress_and_validation(store):
    rater = store.new_rater()
    first = store.next_trial(rater)
    token = store.item_token(rater, first.item_id)
    second_token = None
    for bad in (6, 0, 3.5, True, float("nan"), "4", None):
        with pytest.raises(ValueError, match=r"rating 'A · harmony' must be a whole number 1-5"):
            store.answer(rater, token, scores(3, 2) | {"harmony": [bad, 2]}, "A")
    with pytest.raises(ValueError, match=r"rate every clip \(A, B\) on creativity"):
        store.answer(rater, token, scores(3, 2) | {"creativity": [3]}, "A")
    with pytest.raises(ValueError, match="preference must be one of A, B, same"):
        store.answer(rater, token, scores(3, 2), "C")
    assert store.answered(rater) == set()  # nothing refused was stored
    answered = store.answer(rater, token, scores(4.0, np.int64(2)), "A")  # integral floats and numpy ints pass
    assert answered.first and answered.answer == {"scores": scores(4, 2), "preference": "A"}
    assert answered.next.number == 2 and store.answered(rater) == {first.item_id}
    second_token = store.item_token(rater, answered.next.item_id)
    with pytest.raises(ValueError, match="unknown rater token"):
        store.answer("not-registered", second_token, scores(3, 2), "A")


def test_a_replayed_answer_is_stored_once_for_the_screen_heard(store):
    """A repeat of an answer (the same item token) — identical or with other ratings — writes
    nothing and returns the stored answer and the same next screen: progress does not move."""
    rater = store.new_rater()
    first = store.next_trial(rater)
    token = store.item_token(rater, first.item_id)
    answered = store.answer(rater, token, scores(4, 2), "A")
    for again in (store.answer(rater, token, scores(4, 2), "A"), store.answer(rater, token, scores(1, 5), "B")):
        assert not again.first and again.answer == answered.answer and again.next == answered.next
    ratings, choices = store.frames()
    assert len(choices) == 1 and choices.iloc[0]["chosen"] == first.systems[0]
    assert len(ratings) == 2 * len(CRITERIA)
    assert store.answered(rater) == {first.item_id} and store.next_trial(rater) == answered.next


def test_a_replay_racing_itself_is_stored_once(store):
    rater = store.new_rater()
    first = store.next_trial(rater)
    token = store.item_token(rater, first.item_id)
    results = at_once(8, lambda k: store.answer(rater, token, scores(1 + k % 5, 2), "AB"[k % 2]))
    assert len(results) == 8 and len(store.frames()[1]) == 1
    assert sum(r.first for r in results) == 1  # exactly one request wrote it
    assert all(r.answer == results[0].answer and r.next == results[0].next for r in results)
    assert store.answered(rater) == {first.item_id} and results[0].next.number == 2


def test_concurrent_raters_lose_nothing(store):
    raters = [store.new_rater() for _ in range(8)]
    fgg_first = lambda trial: "A" if trial.systems[0] == "fgg" else "B"  # noqa: E731
    at_once(8, lambda k: answer_all(store, raters[k], fgg_first))
    ratings, choices = store.frames()
    assert len(choices) == 8 * 6 and len(set(zip(choices["rater"], choices["item"], strict=True))) == 48
    assert (choices["chosen"] == "fgg").all()


def test_item_tokens_of_other_raters_or_garbled_are_refused(store):
    a, b = store.new_rater(), store.new_rater()
    item = store.next_trial(a).item_id
    store.next_trial(b)
    token_a, token_b = store.item_token(a, item), store.item_token(b, item)
    assert token_a != token_b and len(token_a) == 32
    garbled = [token_b, "", None, 123, token_a[:-1], token_a + "0", token_a.upper(), "ä" * 32, "0" * 32, str(item)]
    for bad in garbled:
        with pytest.raises(ValueError, match=r"^this answer is not for a screen you were given [^\n]*$"):
            store.answer(a, bad, scores(3, 3), "same")
    with pytest.raises(ValueError, match="not for a screen you were given"):
        store.answer(b, token_a, scores(3, 3), "same")  # a's token under b's session
    assert store.frames()[1].empty
    assert store.answer(a, token_a, scores(3, 3), "same").first  # the right one still works


def test_rater_tokens_are_issued_never_chosen_and_belong_to_one_study(database, tmp_path):
    listening = ListeningStore(database, [built(tmp_path), built(tmp_path, "other")])
    store, other = listening.study("pairs"), listening.study("other")
    a, b = store.new_rater(), store.new_rater()
    assert a != b and len(a) == 24 and store.resume_rater(a) == a
    for guess in ("alice", "-A1", "ａｌｉｃｅ", "", a[:-1], "x'; DROP TABLE study_answers; --", "x" * 1000, None):
        with pytest.raises(ValueError, match="unknown rater token"):
            store.resume_rater(guess)
    with pytest.raises(ValueError, match="unknown rater token"):
        other.resume_rater(a)  # a participant of one study never continues in another
    listening.engine.dispose()


def test_clip_ids_are_opaque_and_per_rater(store):
    a, b = store.new_rater(), store.new_rater()
    item = store.next_trial(a).item_id
    ids = {store.clip_id(r, item, label) for r in (a, b) for label in "AB"}
    assert len(ids) == 4 and all(len(i) == 24 and set(i) <= set("0123456789abcdef") for i in ids)
    assert store.clip_id(a, item, "A") == store.clip_id(a, item, "A")


def test_a_multi_stimulus_page_stores_every_clips_scores(database, tmp_path):
    clips = ("fgg", "no_fgg", "inpaint", "hidden_reference", "anchor")
    study = built(tmp_path, "pages", "multi_stimulus", [(f"p{i}", "trial", clips) for i in range(4)])
    listening = ListeningStore(database, [study])
    store = listening.study("pages")
    rater = store.new_rater()
    trial = store.next_trial(rater)
    assert trial.labels == ("A", "B", "C", "D", "E") and sorted(trial.systems) == sorted(clips)
    token = store.item_token(rater, trial.item_id)
    with pytest.raises(ValueError, match=r"rate every clip \(A, B, C, D, E\) on creativity"):
        store.answer(rater, token, scores(3, 3), "A")
    given = {c: [1, 2, 3, 4, 5] for c in CRITERIA}
    store.answer(rater, token, given, "E")
    ratings, choices = store.frames()
    heard = dict(zip(trial.labels, trial.systems, strict=True))
    harmony = ratings[ratings["criterion"] == "harmony"]
    assert dict(zip(harmony["system"], harmony["score"], strict=True)) == {
        heard[k]: n for n, k in enumerate("ABCDE", 1)
    }
    assert choices.iloc[0]["chosen"] == heard["E"] and choices.iloc[0]["shown"] == trial.systems
    listening.engine.dispose()


def test_the_export_has_a_row_per_rating_with_the_config_hash_formula_safe(store):
    rater = store.new_rater()
    answer_all(store, rater, lambda trial: "same")
    with Session(store.engine) as session:  # a hostile-looking id, as an older database may hold
        session.add(Rater(id="=HYPERLINK(1)", study="pairs", created_at=datetime.now(UTC)))
        session.commit()
    trial = store.next_trial("=HYPERLINK(1)")
    store.answer("=HYPERLINK(1)", store.item_token("=HYPERLINK(1)", trial.item_id), scores(2, 4), "B")
    rows = export_rows(store.study, *store.frames())
    assert len(rows) == 7 * (2 * len(CRITERIA) + 2)  # every score and both clips' preference rows
    assert {r["config_hash"] for r in rows} == {store.study.config_hash}
    same = [r for r in rows if r["criterion"] == "preference" and r["rater"] == rater]
    assert {r["score"] for r in same} == {0.5}  # "same": half a win each
    table = list(csv.DictReader(io.StringIO(answers_csv(rows))))
    assert {r["rater"] for r in table} == {rater, "'=HYPERLINK(1)"}
    assert all(datetime.fromisoformat(r["submitted_at"]).utcoffset() == timedelta(0) for r in table)
    doc = json.loads(answers_json(rows))
    assert len(doc["answers"]) == len(rows) and doc["exported_at"].endswith("+00:00")


def test_attention_check_flags_and_excludes_careless_raters(tmp_path):
    items = [(f"p{i}", "trial", ("fgg", "no_fgg")) for i in range(3)] + [("p0", "attention", ("fgg", "degraded"))]
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", [built(tmp_path, items=items)]).study("pairs")
    careful, careless = store.new_rater(), store.new_rater()
    for rater in (careful, careless):
        while (trial := store.next_trial(rater)) is not None:
            fooled = rater == careless and "degraded" in trial.systems
            good = trial.labels[trial.systems.index("fgg")]
            chosen = {"A": "B", "B": "A"}[good] if fooled else good
            a, b = (4, 2) if good == "A" else (2, 4)
            store.answer(rater, store.item_token(rater, trial.item_id), scores(a, b), chosen)
    result = store.results(n_boot=50)
    assert len(result["answered_at"]) == 8  # every screen answered, for the "answers over time" plot
    assert analysis_figures(result)["over_time"].data[0].y[-1] == 8
    assert result["counts"]["raters"] == 2 and result["counts"]["flagged_raters"] == 1
    assert result["counts"]["raters_used"] == 1 and result["counts"]["items_used"] == 3
    assert {row["rater"] for row in result["exclusions"]} == {careless}


def test_simulated_raters_through_the_page_recover_the_true_order(tmp_path):
    """Raters with known system strengths and noise answer a study through the participant
    page's own events (start, submit); the analysis of what was stored ranks the systems as
    the raters' model does."""
    strengths = {"fgg": 1.0, "no_fgg": -0.8, "inpaint": 0.2}
    items = [(f"p{i}", "trial", ("fgg", other)) for i in range(8) for other in ("no_fgg", "inpaint")]
    items += [(f"q{i}", "trial", ("no_fgg", "inpaint")) for i in range(8)]
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", [built(tmp_path, items=items)]).study("pairs")
    rng = random.Random(7)
    for _ in range(12):
        browser = ParticipantBrowser(store, tmp_path)
        browser.values[browser.page.consent] = True
        browser.send("start")
        bias = rng.gauss(0, 0.4)
        while browser.values[browser.page.item_token]:
            trial = store.heard_trial(browser.values[browser.page.token], browser.values[browser.page.item_token])
            score = [min(5, max(1, round(3 + strengths[s] + bias + rng.gauss(0, 0.7)))) for s in trial.systems]
            gap = strengths[trial.systems[0]] - strengths[trial.systems[1]]
            browser.rate(*score, "A" if rng.random() < 1 / (1 + np.exp(-2 * gap)) else "B")
            browser.send("submit")
    result = analyse(*store.frames(), reference="fgg", criteria=CRITERIA, n_boot=100)
    truth = sorted(strengths, key=strengths.get, reverse=True)
    assert [row["system"] for row in result["mos"]["harmony"]] == truth
    assert [row["system"] for row in sorted(result["bradley_terry"], key=lambda r: -r["strength"])] == truth
    assert result["counts"]["raters"] == 12 and result["counts"]["items_used"] == 12 * 24


def test_answers_from_before_studies_are_carried_into_the_study_once(tmp_path):
    """A database of the legacy test (one pairwise pool): its answers become the shipped
    study's, and their rater continues where they stopped."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    ratings = ", ".join(f"{side}_{c} INTEGER" for side in "ab" for c in CRITERIA)
    with engine.begin() as db:
        db.exec_driver_sql(
            "CREATE TABLE pairs (id INTEGER PRIMARY KEY, key TEXT, segment INTEGER, system_x TEXT, "
            "system_y TEXT, midi_x TEXT, midi_y TEXT)"
        )
        db.exec_driver_sql("CREATE TABLE raters (id TEXT PRIMARY KEY, created_at DATETIME)")
        db.exec_driver_sql(
            f"CREATE TABLE ratings (id INTEGER PRIMARY KEY, rater_id TEXT, pair_id INTEGER, "
            f"system_a TEXT, system_b TEXT, {ratings}, preference TEXT, submitted_at DATETIME)"
        )
        db.exec_driver_sql(
            "INSERT INTO pairs VALUES (1, 'seg0000-fgg-vs-no_fgg', 0, 'fgg', 'no_fgg', 'a', 'b'), "
            "(2, 'seg0000_fgg-attention', 0, 'fgg', 'degraded', 'a', 'c')"
        )
        db.exec_driver_sql("INSERT INTO raters VALUES ('old-rater-token', '2026-11-30 10:00:00')")
        db.exec_driver_sql(
            "INSERT INTO ratings VALUES (1, 'old-rater-token', 1, 'no_fgg', 'fgg', 2, 3, 4, 5, 4, 5, "
            "'B', '2026-11-30 10:01:00'), (2, 'old-rater-token', 2, 'fgg', 'degraded', 4, 5, 4, 1, "
            "1, 1, 'A', '2026-11-30 10:02:00')"
        )
    engine.dispose()
    for _ in range(2):  # a restart carries nothing twice
        store = ListeningStore(url).study("fgg-vs-baselines")
        ratings_frame, choices = store.frames()
        assert len(choices) == 2 and list(choices["chosen"]) == ["fgg", "fgg"]
        no_fgg = ratings_frame[(ratings_frame["system"] == "no_fgg") & (ratings_frame["criterion"] == "harmony")]
        assert list(no_fgg["score"]) == [3] and list(no_fgg["heard_as"]) == ["A"]
        assert store.resume_rater("old-rater-token") == "old-rater-token"
        assert store.next_trial("old-rater-token").number == 3
        store.store.engine.dispose()


def test_cli_results_report_and_password_export(tmp_path, monkeypatch, capsys):
    """``results --study`` and ``export --study`` on the shipped study, its answers stored."""
    from demo.listening import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FGG_DB_URL", url)
    store = ListeningStore(url).study("fgg-vs-baselines")  # the shipped studies, built
    assert any(item.kind == "attention" for item in store.items())
    rater = store.new_rater()
    for _ in range(4):  # FGG scored above the other clip, so the attention check (if among them) is passed
        trial = store.next_trial(rater)
        fgg_first = trial.systems[0] == "fgg"
        given = scores(4, 3) if fgg_first else scores(3, 4)
        store.answer(rater, store.item_token(rater, trial.item_id), given, "A" if fgg_first else "B")
    html = tmp_path / "report.html"
    assert main(["results", "--study", "fgg-vs-baselines", "--html", str(html), "--boot", "50"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["study"] == "fgg-vs-baselines" and result["counts"]["raters"] == 1
    assert "Mean opinion scores" in html.read_text() and html.read_text().count("plotly.js v") == 1
    assert main(["results", "--study", "nope"]) == 2 and "no study file" in capsys.readouterr().err
    monkeypatch.setenv("FGG_ADMIN_PASSWORD", "s3cret")
    assert main(["export", "--study", "fgg-vs-baselines", "--password", "nope"]) == 2
    assert "wrong admin password" in capsys.readouterr().err
    before = set(tmp_path.parent.iterdir())
    assert main(["export", "--study", "fgg-vs-baselines", "--password", "s3cret", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["answers"]) == 4 * (2 * len(CRITERIA) + 2)
    assert set(tmp_path.parent.iterdir()) == before  # nothing written to disk


def test_clip_server_prerenders_and_serves_per_rater_bytes(tmp_path):
    from scipy.io import wavfile

    from demo.listening.clips import ClipServer, RenderCache

    study = midi_study(tmp_path, {5: "no_fgg"})
    store = ListeningStore(f"sqlite:///{tmp_path / 'a.db'}", [study]).study("pairs")
    clips = ClipServer(store, tmp_path / "clips", renders=RenderCache(tmp_path / "cache"))
    clips.prerender().join(timeout=120)
    assert len(list((tmp_path / "cache" / "rendered").glob("*.wav"))) == 1  # one render per content
    store.store._secret = b"fixed secret for a deterministic test"
    item = store.items()[0].id
    files = [clips.clip(r, item, "A", store.midi_path("p5_fgg.mid")) for r in ("rater-1", "rater-2")]
    assert all("fgg" not in Path(f).name and "p5" not in Path(f).name for f in files)
    (rate_a, audio_a), (rate_b, audio_b) = (wavfile.read(f) for f in files)
    assert rate_a == rate_b and len(audio_a) != len(audio_b)
    n = min(len(audio_a), len(audio_b))
    np.testing.assert_array_equal(audio_a[:n], audio_b[:n])  # the same music, only the silence differs


class StubClips:
    """Clips without rendering: one tiny WAV per (rater, item, label), named by the clip id."""

    def __init__(self, store, folder):
        self.store, self.folder = store, folder
        folder.mkdir(exist_ok=True)

    def clip(self, rater, item_id, label, midi_path):
        from scipy.io import wavfile

        out = self.folder / f"{self.store.clip_id(rater, item_id, label)}.wav"
        if not out.is_file():
            wavfile.write(out, 8000, np.zeros(80, dtype=np.int16))
        return str(out)


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


def test_new_sessions_are_limited_per_client():
    from demo.tabs.listen import ClientLimiter

    now = [0.0]
    limiter = ClientLimiter(3, window=3600, clock=lambda: now[0])
    assert [limiter.allow("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("5.6.7.8")  # per client
    now[0] += 3601
    assert limiter.allow("1.2.3.4")  # the window slides


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

    def rate(self, *scores_and_preference):
        """One score per clip (A, B, …) on every criterion, then the preference."""
        *given, preference = scores_and_preference
        for label, score in zip(self.page.ratings, given, strict=True):
            for radio in self.page.ratings[label].values():
                self.values[radio] = score
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
    assert ack[page.status] == "**Pair 2 of 6**" and ack[page.item_token]
    for replay in (request, [3 if isinstance(v, int) else ("B" if v == "A" else v) for v in request]):
        again = started.send("submit", list(replay))  # the same request (then with other ratings)
        assert again[page.status] == "**Pair 2 of 6**" and again[page.item_token] == ack[page.item_token]
    _, choices = store.frames()
    assert len(choices) == 1 and choices.iloc[0]["chosen"] == heard.systems[0]
    assert store.answered(rater) == {heard.item_id} and store.next_trial(rater).number == 2
    started.rate(3, 3, "same")  # the next real answer is for pair 2
    assert started.send("submit")[page.status] == "**Pair 3 of 6**" and len(store.frames()[1]) == 2


def test_concurrent_replays_through_the_page_are_stored_once(store, started):
    page, rater = started.page, started.values[started.page.token]
    started.rate(5, 1, "A")
    request = started.request("submit")
    responses = at_once(6, lambda _: started.send("submit", list(request)))
    assert len(responses) == 6 and len(store.frames()[1]) == 1
    assert {(r[page.status], r[page.item_token]) for r in responses} == {
        ("**Pair 2 of 6**", store.item_token(rater, store.next_trial(rater).item_id))
    }
    assert store.next_trial(rater).number == 2


def test_the_page_refuses_an_item_token_not_given_to_the_rater(store, started):
    page, rater = started.page, started.values[started.page.token]
    other = store.new_rater()
    started.rate(4, 4, "same")
    for bad in (store.item_token(other, store.next_trial(other).item_id), "garbled", "0" * 32):
        started.values[page.item_token] = bad
        refused = started.send("submit")
        assert set(refused) == {page.notice}  # a message, nothing else changes
        assert refused[page.notice].startswith("⚠️ this answer is not for a screen you were given")
        assert "\n" not in refused[page.notice] and "Traceback" not in refused[page.notice]
    assert store.frames()[1].empty and store.next_trial(rater).number == 1


def test_the_page_checks_what_it_never_sends_before_use(store, started):
    """Issue 22, finding 3: a submit with a rating of 0, 3.5, NaN, True, "4" or 10 MB, an
    unknown preference or an oversized item token is answered in the page's notice, naming the
    value (cut), and nothing is stored; Gradio's own refusal named no rating and echoed it all."""
    page = started.page
    started.rate(4, 4, "same")
    cut = "'" + "x" * 39 + "… (10,000,000 characters)"
    for bad, shown in ((0, "0"), (3.5, "3.5"), (float("nan"), "nan"), (True, "True"), ("4", "'4'"), ("x" * 10**7, cut)):
        started.values[page.ratings["A"]["harmony"]] = bad
        assert started.send("submit") == {page.notice: f"⚠️ A · harmony must be one of 1, 2, 3, 4, 5 (got {shown})"}
    started.rate(4, 4, "C")
    assert started.send("submit") == {page.notice: "⚠️ preference must be one of A, B, same (got 'C')"}
    started.rate(4, 4, "same")
    started.values[page.item_token] = "f" * 100_000
    assert started.send("submit") == {page.notice: "⚠️ item_token is 100,000 characters long; the limit is 64"}
    assert store.frames()[1].empty


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
