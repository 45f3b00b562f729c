"""The app as a stranger on a public Space would use it: out-of-range, non-numeric, huge and
malformed values through the API client and raw HTTP, a 100 MB upload, an anonymous
evaluation of 200 segments, a visitor who leaves mid-evaluation, temp files piling up.
Every refusal must come at once (< 2 s), name the parameter and the limit, never show a
path or a traceback, and leave one line in the log."""

import asyncio
import io
import json
import logging
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import httpx
import pretty_midi
import pytest
from gradio.state_holder import SessionState
from gradio_client import Client, handle_file

import demo.guard
from demo.bench import event_id, generate_data
from demo.controller import Controller
from demo.limits import Admission, Busy, client_of
from demo.listening import ListeningStore
from demo.request import GENERATE_PARAMETERS, AppRequest
from demo.sessions import ReadySessions
from demo.ui import build_app, launch
from demo.workspace import Workspace
from tests.test_app import controller, free_port  # noqa: F401  (fixture)

FAST = 2.0  # seconds: every refusal arrives within this


@pytest.fixture(scope="module")
def hostile_server(controller, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("hostile")
    generation = Admission("generation", total=16, per_client=2)
    evaluation = Admission("evaluation", total=2, per_client=1)
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp / 'db.sqlite'}"), generation, evaluation)
    port = free_port()
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", generation, evaluation
    app.close()


HOSTILE = [  # (endpoint, arguments, parameter named, words the message must contain)
    ("/generate", dict(chords="C " * 50_000), "chords", "100,000 characters long; the limit is 2,000"),
    ("/generate", dict(chords="C", tempo="fast"), "tempo", "tempo must be a number from 40 to 220 BPM (got 'fast')"),
    ("/generate", dict(chords="C", tempo=1e9), "tempo", "from 40 to 220 BPM (got 1e+09)"),
    ("/generate", dict(chords="C", seed=1e30), "seed", "seed must be a whole number from 0 to 2147483647"),
    ("/generate", dict(chords="C", seed=-1), "seed", "seed must be a whole number from 0"),
    ("/generate", dict(chords="C", segment=10**9), "segment", "segment must be a whole number from -1 to 1708"),
    ("/generate", dict(chords="C", segment=1.5), "segment", "segment must be a whole number from -1 to 1708 (got 1.5)"),
    ("/generate", dict(chords="C", steps=10_000), "steps", "steps must be a whole number from 2 to 50"),
    ("/generate", dict(chords="C", bars=10_000), "bars", "bars must be a whole number from 4 to 32"),
    ("/generate", dict(chords="C", cfg_scale=None), "cfg_scale", "cfg_scale must be a number from 1 to 12 (got None)"),
    ("/generate", dict(chords="C", fgg="no"), "fgg", "fgg must be true or false"),
    ("/generate", dict(chords="C", model="x" * 1_000_000), "model", "(1,000,000 characters); choose one of paper"),
    ("/generate", dict(chords="C", rhythm="<script>"), "rhythm", "unknown rhythm '<script>'; choose one of none"),
    ("/generate", dict(chords="C", scale="custom", custom_scale="C " * 100), "custom_scale", "the limit is 100"),
    ("/generate", dict(chords="C | Hm"), "chords", "bar 2: unrecognised chord symbol 'Hm'"),
    ("/generate", dict(chords=""), "chords", "empty chord progression"),
    ("/generate", dict(chords="C", force_rhythm="yes"), "force_rhythm", "force_rhythm must be true or false"),
    ("/generate", dict(chords="C", melody_rhythm="<b>"), "melody_rhythm", "unknown melody_rhythm '<b>'; choose one of"),
    ("/generate", dict(chords="C", melody_rhythm="free"), "melody_rhythm", "does not write the melody"),
    ("/compare", dict(chords="C", system_b="oracle"), "system_b", "unknown system_b 'oracle'"),
    ("/compare", dict(chords="C", system_a="ground_truth"), "system_a", "pick a segment"),
    (
        "/evaluate",
        dict(n_segments=200, systems=["fgg"], model_name="paper"),
        "n_segments",
        "n_segments must be a whole number from 1 to 20 (got 200)",
    ),
    ("/evaluate", dict(n_segments=5, systems=6 * ["fgg", "no_fgg"], model_name="paper"), "systems", "up to 11"),
    ("/evaluate", dict(n_segments=5, systems=["fgg; rm -rf /"], model_name="paper"), "systems", "unknown system"),
    (
        "/evaluate",
        dict(n_segments=5, systems=["fgg"], model_name="../x"),
        "model_name",
        "unknown model_name '../x'; choose one of paper",
    ),
]


@pytest.mark.parametrize(
    "endpoint,arguments,parameter,message", HOSTILE, ids=[f"{e}-{p}-{i}" for i, (e, _, p, _) in enumerate(HOSTILE)]
)
def test_hostile_input_is_refused_at_once_naming_the_parameter(
    hostile_server, endpoint, arguments, parameter, message, caplog, capfd
):
    url, generation, evaluation = hostile_server
    client = Client(url, verbose=False)
    caplog.set_level(logging.INFO, logger="fgg.app")
    began = time.perf_counter()
    with pytest.raises(Exception) as err:
        client.predict(**arguments, api_name=endpoint)
    seconds = time.perf_counter() - began
    text = str(err.value)
    assert seconds < FAST, (seconds, text)
    assert f"- {parameter}: " in text and message in text, text
    assert len(text) < 400 and "/tmp" not in text and "Traceback" not in text
    lines = [r.getMessage() for r in caplog.records if r.name == "fgg.app"]
    assert len(lines) == 1 and "\n" not in lines[0] and len(lines[0]) < 400, lines
    assert "Traceback" not in capfd.readouterr().err
    assert generation.held() == 0 and evaluation.held() == 0  # nothing refused is holding a place


def test_corrupt_midi_names_the_file_not_the_server_path(hostile_server, tmp_path):
    url, *_ = hostile_server
    corrupt = tmp_path / "my tune.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06" + b"\xff" * 64)
    with pytest.raises(Exception) as err:
        Client(url, verbose=False).predict(chords="C", melody_file=handle_file(str(corrupt)), api_name="/generate")
    text = str(err.value)
    assert "cannot read melody MIDI 'my tune.mid': it is not a valid standard MIDI file" in text
    assert "/" not in text.split("'my tune.mid'")[0] and tempfile.gettempdir() not in text


def test_raw_http_upload_over_1_mb_is_refused_before_it_is_stored(hostile_server):
    url, *_ = hostile_server
    cache = Path(tempfile.gettempdir()) / "gradio"
    before = {p for p in cache.rglob("*")} if cache.exists() else set()
    began = time.perf_counter()
    response = httpx.post(url + "gradio_api/upload", files={"files": ("big.mid", b"\0" * 100_000_000)}, timeout=60)
    assert time.perf_counter() - began < 10  # the 100 MB still has to cross the loopback
    assert response.status_code == 413 and "maximum allowed size of 1048576 bytes" in response.text
    after = {p for p in cache.rglob("*")} if cache.exists() else set()
    assert not [p for p in after - before if p.name == "big.mid"]


def test_raw_http_join_with_a_bad_value_gets_a_422_naming_it(hostile_server):
    url, *_ = hostile_server
    config = httpx.get(url + "config").json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "generate")
    data = ["C" * 1_000_000] + [None] * (len(GENERATE_PARAMETERS) - 1)
    began = time.perf_counter()
    response = httpx.post(
        url + "gradio_api/queue/join",
        json={"data": data, "fn_index": fn, "session_hash": "raw1", "event_data": None, "trigger_id": None},
        timeout=30,
    )
    assert time.perf_counter() - began < FAST
    assert response.status_code == 422
    detail = json.dumps(response.json())
    # bounded: one short entry per parameter (Gradio's format), none echoing the 1 MB value
    assert "chords is 1,000,000 characters long; the limit is 2,000" in detail
    assert len(detail) < 120 * len(GENERATE_PARAMETERS)


def _call(url: str, route: str, fn: int, data: list, session: str) -> httpx.Response:
    """A raw call of event ``fn``: ``route`` "queue/join", or "run/predict" (how the browser
    sends a ``queue=False`` event). NaN is sent too (a browser's JSON.stringify would send null)."""
    body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    content = json.dumps(body)  # allows NaN, unlike httpx's json=
    return httpx.post(
        url + f"gradio_api/{route}", content=content, headers={"content-type": "application/json"}, timeout=60
    )


def _one_bounded_log_line(caplog, capfd) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == "fgg.app"]
    assert len(lines) == 1 and "\n" not in lines[0] and len(lines[0]) < 400, lines
    assert "Traceback" not in capfd.readouterr().err
    caplog.clear()
    return lines[0]


CRITERIA = ("creativity", "harmony", "naturalness")  # the criteria of the study at /listen (fgg-vs-baselines)
SUBMIT = ("rater_token", "item_token", *(f"{side}_{c}" for side in "ab" for c in CRITERIA), "preference")


def _submit(**sent) -> list:
    """A listening submit's data (in the order of its inputs): a well-formed answer, ``sent`` instead."""
    values = {"rater_token": None, "item_token": "0" * 32, "preference": "A"} | dict.fromkeys(SUBMIT[2:-1], 3)
    return [(values | sent)[name] for name in SUBMIT]


LISTENING_HOSTILE = [  # (event, data, parameter named, the message)
    ("start", [True, 12345, {}], "rater_token", "rater_token must be text (got 12345)"),
    ("start", ["yes", None, {}], "consent", "consent must be true or false (got 'yes')"),
    ("start", [True, "t" * 10_000_000, {}], "rater_token", "rater_token is 10,000,000 characters long; the limit"),
    ("start", [True, None, [1, 2]], "draft", "draft must be the page's kept answers (an object) or null"),
    ("submit", _submit(a_harmony=3.5), "a_harmony", "A · harmony must be one of 1, 2, 3, 4, 5 (got 3.5)"),
    ("submit", _submit(b_creativity=0), "b_creativity", "B · creativity must be one of 1, 2, 3, 4, 5 (got 0)"),
    ("submit", _submit(a_naturalness=float("nan")), "a_naturalness", "must be one of 1, 2, 3, 4, 5 (got nan)"),
    ("submit", _submit(a_harmony=True), "a_harmony", "A · harmony must be one of 1, 2, 3, 4, 5 (got True)"),
    (
        "submit",
        _submit(a_creativity="x" * 10_000_000),
        "a_creativity",
        "A · creativity must be one of 1, 2, 3, 4, 5 (got '" + "x" * 39 + "… (10,000,000 characters))",
    ),
    ("submit", _submit(preference="C"), "preference", "preference must be one of A, B, same (got 'C')"),
    (
        "submit",
        _submit(item_token="f" * 100_000),
        "item_token",
        "item_token is 100,000 characters long; the limit is 64",
    ),
]


@pytest.mark.parametrize(
    "event,data,parameter,message",
    LISTENING_HOSTILE,
    ids=[f"{e}-{p}-{i}" for i, (e, _, p, _) in enumerate(LISTENING_HOSTILE)],
)
def test_listening_calls_are_checked_like_the_rest(hostile_server, event, data, parameter, message, caplog, capfd):
    """Finding 3: the listening page's events, called over HTTP with what its page never sends.
    Joining the queue: a 422 naming the parameter, at once. Called directly, as the browser
    does (Gradio runs no validator there): the page's notice says it, twice in a session (the
    first answer makes Gradio replace the session's radios). Never an echo, a traceback or
    more than one short log line."""
    url, *_ = hostile_server
    caplog.set_level(logging.INFO, logger="fgg.app")
    fn = event_id(url, event)
    began = time.perf_counter()
    joined = _call(url, "queue/join", fn, data, f"listen-join-{parameter}")
    assert time.perf_counter() - began < FAST
    assert joined.status_code == 422 and len(joined.text) < 2_000, joined.text[:300]
    refused = [d for d in joined.json()["detail"] if not d["is_valid"]]
    assert [d["parameter_name"] for d in refused] == [parameter] and message in refused[0]["message"], refused
    assert message in _one_bounded_log_line(caplog, capfd)
    for _ in range(2):
        direct = _call(url, "run/predict", fn, data, f"listen-run-{parameter}")
        assert direct.status_code == 200 and len(direct.text) < 2_000, direct.text[:300]
        notices = [v for v in direct.json()["data"] if isinstance(v, str) and v.startswith("⚠️")]
        assert len(notices) == 1 and message in notices[0], notices
        assert message in _one_bounded_log_line(caplog, capfd)


@pytest.mark.parametrize("event", ["generate", "compare", "evaluate", "start", "submit"])
def test_a_call_with_more_values_than_parameters_is_refused(hostile_server, event, caplog, capfd):
    """Finding 8: Gradio ignores extra values; every event refuses them, naming the count (a
    join: 422; a direct call: one line), and refuses too few without echoing them."""
    url, generation, evaluation = hostile_server
    caplog.set_level(logging.INFO, logger="fgg.app")
    fn = event_id(url, event)
    config = httpx.get(url + "config", timeout=30).json()
    n = len(next(d for d in config["dependencies"] if d["id"] == fn)["inputs"])
    for sent in (n + 1, n + 5, n - 1):
        data = ["x" * 100_000] * sent
        joined = _call(url, "queue/join", fn, data, f"extra-{event}-{sent}")
        assert joined.status_code == 422, joined.text[:300]
        assert joined.json()["detail"] == [
            {
                "__type__": "validate",
                "is_valid": False,
                "message": f"/{event} takes {n} values, one per parameter in order (got {sent})",
                "parameter_name": "data",
            }
        ]
        assert f"takes {n} values" in _one_bounded_log_line(caplog, capfd)
        direct = _call(url, "run/predict", fn, data, f"extra-{event}-{sent}")
        if event in ("generate", "compare", "evaluate"):  # queued: no way around the queue
            assert direct.status_code == 404, direct.text[:300]
            continue
        assert direct.json()["error"] == f"/{event} takes {n} values, one per parameter in order (got {sent})"
        assert f"takes {n} values" in _one_bounded_log_line(caplog, capfd)
    assert generation.held() == 0 and evaluation.held() == 0


@pytest.mark.parametrize("path", ["/etc/passwd", "tune.mid", "/tmp/gradio/../../etc/passwd", 12345])
def test_a_file_not_uploaded_is_refused_without_a_server_path(hostile_server, path, caplog, capfd):
    """Finding 8: a FileData whose path is not an upload (an absolute path, a relative one —
    Gradio's message made it absolute with the server's working directory — or not text), in
    the file input or inside any other, is refused as that parameter's, in one line that shows
    no path (Gradio's own 400 said "Cannot move /etc/passwd to the gradio cache dir…")."""
    url, generation, _ = hostile_server
    caplog.set_level(logging.INFO, logger="fgg.app")
    fn = event_id(url, "generate")
    file = {"path": path, "meta": {"_type": "gradio.FileData"}}
    why = (
        "names a file not uploaded to this server (upload it first: /gradio_api/upload returns its path)"
        if isinstance(path, str)
        else "must be a file (the FileData of an upload: the path /gradio_api/upload returned) or null"
    )
    for parameter, value in (("melody_file", file), ("chords", {"notes": [file]})):
        response = _call(url, "queue/join", fn, generate_data(url, **{parameter: value}), f"path-{parameter}")
        text = response.text
        assert response.status_code == 422, text[:300]
        refused = [d for d in response.json()["detail"] if not d["is_valid"]]
        assert [(d["parameter_name"], d["message"]) for d in refused] == [(parameter, f"{parameter} {why}")]
        for leak in ("passwd", "tune.mid", str(Path.cwd()), "Cannot move", "cache"):
            assert leak not in text
        line = _one_bounded_log_line(caplog, capfd)
        assert "passwd" not in line and str(Path.cwd()) not in line
    assert generation.held() == 0


def test_an_uploaded_file_is_accepted(hostile_server):
    """What /upload stored passes the check of files, and the generation runs."""
    url, *_ = hostile_server
    tune = pretty_midi.PrettyMIDI()
    tune.instruments.append(pretty_midi.Instrument(0))
    tune.instruments[0].notes.append(pretty_midi.Note(velocity=80, pitch=64, start=0.0, end=1.0))
    midi = io.BytesIO()
    tune.write(midi)
    upload = httpx.post(url + "gradio_api/upload", files={"files": ("tune.mid", midi.getvalue())}, timeout=30)
    file = {"path": upload.json()[0], "orig_name": "tune.mid", "meta": {"_type": "gradio.FileData"}}
    data = generate_data(url, chords="C", melody_file=file, steps=2)
    assert _call(url, "queue/join", event_id(url, "generate"), data, "uploaded").status_code == 200
    assert _completions(url, "uploaded", 1, 120) == 1


def test_a_body_not_of_the_routes_shape_is_refused_without_its_echo(hostile_server, caplog):
    """FastAPI answers a body that is not its route's shape with all of the input (10 MB sent,
    10 MB back); the app (``demo.guard.http_error_handlers``) a line per error, none of the input."""
    url, *_ = hostile_server
    caplog.set_level(logging.INFO, logger="fgg.app")
    for body, where in (
        ({"data": "x" * 10_000_000, "fn_index": 0, "session_hash": "s"}, ["body", "data"]),
        ({"data": [], "fn_index": "y" * 10_000_000, "session_hash": "s"}, ["body", "fn_index"]),
    ):
        response = httpx.post(url + "gradio_api/queue/join", json=body, timeout=60)
        assert response.status_code == 422 and len(response.text) < 500, response.text[:300]
        assert [e["loc"] for e in response.json()["detail"]][:1] == [where]
    lines = [r.getMessage() for r in caplog.records if r.name == "fgg.app"]
    assert len(lines) == 2 and all(len(line) < 200 and "xxx" not in line for line in lines), lines


def test_a_queued_endpoint_cannot_be_called_around_the_queue(hostile_server):
    """Gradio also runs a queued event on a direct POST unless its API is closed: that call
    skipped the validator and the admission (every limit of this module)."""
    url, generation, _ = hostile_server
    response = httpx.post(url + "gradio_api/run/generate", json={"data": generate_data(url, chords="C")}, timeout=60)
    assert response.status_code == 404, response.text[:300]
    assert generation.held() == 0


def test_one_visitor_cannot_fill_the_generation_queue(hostile_server):
    """Of 10 generations sent at once by one visitor, 2 are admitted; the other 8 are told why
    at once; the places come back when the two finish."""
    url, generation, _ = hostile_server
    client = Client(url, verbose=False)
    jobs = [client.submit(chords="C G | Am F", bars=8, steps=20, seed=k, api_name="/generate") for k in range(10)]
    refused = []
    for job in jobs:
        try:
            job.result(timeout=120)
        except Exception as err:
            refused.append(str(err))
    assert len(refused) == 8, refused
    assert all(
        "you already have 2 generation request(s) waiting or running (limit 2 per visitor)" in text for text in refused
    )
    assert generation.held() == 0


def test_a_refused_join_costs_no_work(hostile_server, controller, monkeypatch):  # noqa: F811
    """A visitor whose share is taken is refused before the join's values are even checked
    (the checks resolve the whole request): during a flood, refusals must not compete with the
    running generations for the cores. ``python -m demo.bench --flood`` measures how fast."""
    url, generation, _ = hostile_server
    monkeypatch.setattr(demo.guard, "client_of", lambda r: r.headers.get("x-test-address") or client_of(r))
    fn = event_id(url, "generate")
    heavy = generate_data(url, chords="C G | Am F", bars=8, steps=50)
    assert [_join(url, fn, heavy, f"share{k}", "10.9.9.9").status_code for k in range(2)] == [200, 200]
    resolved, resolve = [], controller.resolve
    monkeypatch.setattr(controller, "resolve", lambda request: resolved.append(request.chords) or resolve(request))
    flood = generate_data(url, chords="D | Em")
    refused = [_join(url, fn, flood, f"flood{k}", "10.9.9.9") for k in range(10)]
    assert [r.status_code for r in refused] == [422] * 10
    assert all("limit 2 per visitor" in r.text for r in refused)
    assert "D | Em" not in resolved
    assert sum(_completions(url, f"share{k}", 1, 120) for k in range(2)) == 2
    deadline = time.monotonic() + 30
    while generation.held() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert generation.held() == 0


def test_a_new_session_is_not_made_in_the_event_loop(hostile_server, monkeypatch):  # noqa: F811
    """Gradio makes a new session's state (a copy of every component's config) in the event
    loop when its first join arrives; a flood of new sessions held every refusal behind those
    copies. An admitted join takes a state made in advance; the refill happens in a thread of
    its own."""
    url, _, _ = hostile_server
    monkeypatch.setattr(demo.guard, "client_of", lambda r: r.headers.get("x-test-address") or client_of(r))
    made_in: list[str] = []
    make = SessionState.__init__

    def record(self, blocks):
        made_in.append(threading.current_thread().name)
        make(self, blocks)

    monkeypatch.setattr(SessionState, "__init__", record)
    fn = event_id(url, "generate")
    data = generate_data(url, chords="C | G", steps=2)
    assert [_join(url, fn, data, f"new-session-{k}", f"10.8.8.{k}").status_code for k in range(3)] == [200] * 3
    assert sum(_completions(url, f"new-session-{k}", 1, 120) for k in range(3)) == 3
    deadline = time.monotonic() + 10
    while len(made_in) < 3 and time.monotonic() < deadline:  # the refill, REFILL_AFTER_S later
        time.sleep(0.1)
    assert made_in and all(name.startswith("sessions") for name in made_in), made_in


def test_ready_sessions_hand_out_states_made_beforehand_and_make_more_when_none_is_ready():
    with gr.Blocks() as app:
        gr.Textbox()
    sessions = ReadySessions(app, size=2)
    deadline = time.monotonic() + 10
    while sessions.ready() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions.ready() == 2
    for k in range(3):  # two ready, the third made on demand
        asyncio.run(sessions.open(f"s{k}"))
        assert f"s{k}" in app.state_holder
    assert sessions.ready() == 0
    first = app.state_holder.session_data["s0"]
    asyncio.run(sessions.open("s0"))  # a known session keeps its state
    assert app.state_holder.session_data["s0"] is first
    while sessions.ready() < 2 and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    assert sessions.ready() == 2


def test_a_visitor_who_leaves_stops_the_evaluation_and_generation_is_not_blocked(hostile_server, controller):  # noqa: F811
    """An evaluation runs in its own concurrency group (a generation started meanwhile finishes
    first), and closing the browser's event stream cancels it after its current batch."""
    url, _, evaluation = hostile_server
    config = httpx.get(url + "config").json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "evaluate")
    session = "leaver"
    body = {
        "data": [20, ["fgg", "no_fgg", "inpaint", "null_rhythm"], "paper"],
        "fn_index": fn,
        "session_hash": session,
        "event_data": None,
        "trigger_id": None,
    }
    assert httpx.post(url + "gradio_api/queue/join", json=body, timeout=30).status_code == 200
    started = threading.Event()

    def listen():  # the visitor's page: reads the event stream until the run reports progress, then leaves
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
            for line in stream.iter_lines():
                if '"progress"' in line:
                    started.set()
                    return

    reader = threading.Thread(target=listen)
    reader.start()
    assert started.wait(60), "the evaluation never reported progress"
    began = time.perf_counter()
    _, _, _, metrics, *_ = Client(url, verbose=False).predict(chords="C G | Am F", seed=1, api_name="/generate")
    assert metrics["notes"] >= 0 and time.perf_counter() - began < 30
    reader.join()
    deadline = time.perf_counter() + 30
    while evaluation.held() and time.perf_counter() < deadline:
        time.sleep(0.2)
    assert evaluation.held() == 0, "the evaluation kept its place after its visitor left"
    runs = sorted(controller.workspace.root.glob("evaluate-*"), key=lambda p: p.stat().st_mtime)
    rows = len((runs[-1] / "per_sample.csv").read_text().splitlines()) - 1
    time.sleep(2.0)
    assert len((runs[-1] / "per_sample.csv").read_text().splitlines()) - 1 == rows < 80  # stopped, unfinished


class FakeJob:  # stands for the HTTP request that joined a job
    pass


def test_a_ticket_whose_job_left_the_queue_is_forgotten_unless_its_handler_started():
    now = [0.0]
    admission = Admission("generation", total=3, per_client=2, grace=1.0, clock=lambda: now[0])
    queued: set[int] = set()
    admission.live = lambda: queued
    a, b, c = FakeJob(), FakeJob(), FakeJob()
    admission.admit("1.2.3.4", a)
    admission.admit("1.2.3.4", b)
    with pytest.raises(Busy, match="you already have 2 generation request"):
        admission.admit("1.2.3.4", c)  # within the grace: the queue has not added them yet
    queued.update({id(a), id(b)})
    now[0] = 5.0
    admission.start(a)  # a runs; b waits, then its client leaves and the queue drops both
    queued.clear()
    admission.admit("1.2.3.4", c)  # b's place is back; a's is the handler's to give back
    assert admission.held() == 2
    admission.release("1.2.3.4", b)  # gone already: nothing
    assert admission.held() == 2
    admission.release("1.2.3.4", a)
    assert admission.held() == 1
    now[0] = 5.0 + 901
    assert admission.held() == 0  # the last resort: ttl


def _join(url: str, fn: int, data: list, session: str, address: str) -> httpx.Response:
    body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    return httpx.post(url + "gradio_api/queue/join", json=body, headers={"x-test-address": address}, timeout=30)


def _completions(url: str, session: str, expected: int, seconds: float) -> int:
    """Reads ``session``'s event stream until ``expected`` jobs completed (or ``seconds`` passed)."""
    done, deadline = 0, time.monotonic() + seconds
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=seconds) as stream:
        for line in stream.iter_lines():
            done += '"process_completed"' in line
            if done >= expected or time.monotonic() > deadline:
                break
    return done


@pytest.mark.parametrize("leavers", [1, 7])
def test_visitors_who_leave_while_queued_do_not_keep_their_places(hostile_server, monkeypatch, leavers):
    """A busy visitor fills the generation group (2 long jobs); each leaver (its own address)
    joins 2 generations, which wait, and drops its event stream after 1 s. Within 2 s of the
    busy jobs' end no place is held, and every leaver is admitted again."""
    url, generation, _ = hostile_server
    monkeypatch.setattr(demo.guard, "client_of", lambda r: r.headers.get("x-test-address") or client_of(r))
    config = httpx.get(url + "config", timeout=30).json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "generate")
    heavy, light = generate_data(url, chords="C G | Am F", bars=8, steps=20), generate_data(url, chords="C", steps=2)
    run = f"{leavers}-"  # sessions and addresses of their own in each run

    def join(data, session: str, k: int) -> int:
        return _join(url, fn, data, f"{session}{run}{k}", f"10.{leavers}.{session != 'busy'}.{k}").status_code

    began = time.monotonic()
    assert [join(heavy, "busy", 0) for _ in range(2)] == [200, 200]
    assert [join(light, "leaver", k) for k in range(leavers) for _ in range(2)] == [200] * 2 * leavers
    assert generation.held() == 2 + 2 * leavers
    for k in range(leavers):
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash=leaver{run}{k}", timeout=30):
            time.sleep(1.0 if k == 0 else 0.05)  # the visitor's page, open a moment, then closed
    assert _completions(url, f"busy{run}0", 2, 120) == 2, "the busy visitor's jobs never finished"
    drained = time.monotonic()
    while generation.held() and time.monotonic() - drained < FAST:
        time.sleep(0.05)
    freed = time.monotonic() - drained
    codes = [join(light, "again", 0)]
    readmitted = time.monotonic() - drained
    codes += [join(light, "again", k) for k in range(1, leavers)]
    print(f"busy {drained - began:.1f} s; held 0 after {freed:.2f} s, re-admitted after {readmitted:.2f} s: {codes}")
    assert freed < FAST and readmitted < FAST and codes == [200] * leavers, (freed, readmitted, codes)
    assert sum(_completions(url, f"again{run}{k}", 1, 60) for k in range(leavers)) == leavers
    deadline = time.monotonic() + 30
    while generation.held() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert generation.held() == 0


def test_temp_space_is_bounded(controller, tmp_path):  # noqa: F811
    bounded = Controller(controller.generators, workspace=Workspace(tmp_path / "work", keep=3))
    for seed in range(6):
        bounded.generate(AppRequest("C G | Am F", seed=seed, steps=2))
    folders = list((tmp_path / "work").iterdir())
    assert len(folders) == 3 and all(f.name.startswith("generate-") for f in folders)
    assert bounded.workspace.size_bytes() < 3 * 4_000_000  # a 4-bar request: WAV, MP3, MIDI ≈ 2.5 MB


def test_uploads_are_deleted_when_the_server_stops(controller, tmp_path):  # noqa: F811
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    port = free_port()
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/gradio_api/upload",
            files={"files": ("tune.mid", b"MThd" + b"\0" * 100)},
            timeout=30,
        )
        stored = Path(response.json()[0])
        assert stored.is_file()
    finally:
        app.close()
    assert not stored.exists()
