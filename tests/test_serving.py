"""How the app is served: its layout (jobs × torch threads), set explicitly, and generations below
the server's own threads in CPU priority."""

import contextvars
import os
import sys
import threading

import pytest
import torch
from gradio_client import Client

from demo.listening import ListeningStore
from demo.serving import ServingLayout
from demo.ui import build_app, launch
from demo.workers import CORES, WORK_NICENESS, at_low_priority, keep_share
from tests.test_app import controller, free_port, server  # noqa: F401  (fixtures)


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 16, 64])
def test_the_layout_runs_two_jobs_sharing_every_core(cores):
    layout = ServingLayout.for_cores(cores)
    assert layout == ServingLayout(jobs=min(2, cores), threads=cores)


def test_layouts_parse_and_refuse_clearly():
    assert ServingLayout.parse("2x1") == ServingLayout(jobs=2, threads=1)
    assert str(ServingLayout.parse("1x8")) == "1x8"
    assert ServingLayout.parse("auto") == ServingLayout.for_cores(ServingLayout.cores())
    for bad in ("2", "0x2", "2x", "two"):
        with pytest.raises(ValueError, match="give auto or JOBSxTHREADS"):
            ServingLayout.parse(bad)


def test_the_launched_app_is_served_with_its_layout(controller, tmp_path):  # noqa: F811
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    threads = torch.get_num_threads()
    try:
        launch(
            app,
            ServingLayout(jobs=1, threads=1),
            server_name="127.0.0.1",
            server_port=free_port(),
            quiet=True,
            prevent_thread_lock=True,
        )
        for fn in app.fns.values():  # as the queue does when a request first joins
            if fn.concurrency_id == "sample":
                app._queue.create_event_queue_for_fn(fn)
        jobs = app._queue.event_queue_per_concurrency_id["sample"].concurrency_limit
        assert (jobs, torch.get_num_threads(), CORES.cores) == (1, 1, 1)
    finally:
        app.close()
        torch.set_num_threads(threads)
        CORES.cores = threads


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_work_runs_below_the_servers_threads_and_returns_or_raises_as_it_would():
    marker = contextvars.ContextVar("marker", default=None)
    marker.set("the request's context")
    before = niceness()
    assert at_low_priority(lambda: (niceness(), marker.get())) == (
        min(19, before + WORK_NICENESS),
        "the request's context",
    )
    assert niceness() == before  # the caller's thread keeps its priority
    with pytest.raises(ValueError, match="bad chord"):
        at_low_priority(lambda: (_ for _ in ()).throw(ValueError("bad chord")))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_a_generation_runs_below_the_server(server, controller, monkeypatch):  # noqa: F811
    """What failed before: a generation ran at the server's own priority, so while two ran, the
    event loop (joins, refusals, the listening test's clicks) waited for a core."""
    seen, generate = [], controller.generate
    monkeypatch.setattr(controller, "generate", lambda *a, **k: seen.append(niceness()) or generate(*a, **k))
    Client(server, verbose=False).predict(chords="C G", steps=2, api_name="/generate")
    assert seen == [min(19, niceness() + WORK_NICENESS)]


def test_generations_running_at_once_share_the_cores(monkeypatch):
    """What failed before: two generations at once each ran with every core (4 threads
    spinning on 2 cores). Alone a generation takes every core; two take half each, and one
    left alone takes them all back at its next step (``keep_share``)."""
    monkeypatch.setattr(CORES, "cores", 2)
    caller = torch.get_num_threads()
    assert at_low_priority(torch.get_num_threads) == 2
    both_running, one_left = threading.Barrier(2), threading.Event()

    def generation(first: bool) -> list[int]:
        both_running.wait()
        keep_share()
        seen = [torch.get_num_threads()]
        both_running.wait()
        if first:
            one_left.wait(10)  # the other one has ended
            keep_share()
            seen.append(torch.get_num_threads())
        return seen

    results: dict[bool, list[int]] = {}

    def call(first: bool) -> None:
        results[first] = at_low_priority(lambda: generation(first))
        if not first:
            one_left.set()

    threads = [threading.Thread(target=call, args=(first,)) for first in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {True: [1, 2], False: [1]}
    assert torch.get_num_threads() == caller  # the caller's own threads are untouched


def test_a_streamed_job_hands_on_its_parts_and_stops_when_its_visitor_leaves():
    """``stream_admitted`` yields what the work puts out as it comes, then its result; closed
    early (the visitor left or cancelled), the work stops at its next check and its admission is
    given back as the work ends."""
    from types import SimpleNamespace

    from demo.guard import stream_admitted
    from demo.limits import Admission
    from demo.workers import Stopped

    admission = Admission("generation", total=1, per_client=1)
    request = SimpleNamespace(client=SimpleNamespace(host="10.0.0.1"), request=object())

    def result(value):
        return SimpleNamespace(value=value, warnings=[])

    admission.admit("10.0.0.1", request.request)
    assert [
        getattr(x, "value", x)
        for x in stream_admitted(
            "/t", admission, request, lambda out: [out.put(k) for k in range(3)] and result("done")
        )
    ] == [0, 1, 2, "done"]
    assert admission.held() == 0

    stopped = threading.Event()
    steps = []

    def endless(outbox):
        try:
            while True:
                outbox.check()
                steps.append(len(steps))
                outbox.put(len(steps))
                threading.Event().wait(0.01)
        except Stopped:
            stopped.set()
            raise

    admission.admit("10.0.0.1", request.request)
    stream = stream_admitted("/t", admission, request, endless)
    assert next(stream) == 1
    stream.close()  # what Gradio does when the visitor leaves
    assert stopped.wait(5) and len(steps) < 50
    deadline = threading.Event()
    for _ in range(100):
        if admission.held() == 0:
            break
        deadline.wait(0.02)
    assert admission.held() == 0
