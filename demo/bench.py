"""Benchmarks of the app as its visitors meet it (``python -m demo.bench``), each printing one
JSON object of medians (p50), p95s and every run.

- default: click to audio. ``/generate`` through gradio_client the way the browser calls it
  (4 bars, or ``--bars``; the app's defaults: FGG on, CFG 7.5, the fast sampler), timed from
  the request to the returned, playable MP3 (sampling + MIDI + FluidSynth + loudness + MP3 and
  WAV + figure + metrics + transfer), with the median of each part and of the overhead (all
  but sampling).
- ``--users 1 2 4``: that many visitors (each its own address) calling ``/generate`` back to
  back: throughput (calls per second) and each call's latency, for every serving layout in
  ``--layouts`` (``JOBSxTHREADS``: generations at once × torch threads each), side by side in
  one process.
- ``--browser``: click to first sound in Chromium (``--bars 32``: a long piece plays from its
  first window on, streamed), and click to the finished piece.
- ``--flood``: 40 ``/generate`` calls at once, from 1 address and then from 8, while a rater
  goes on with the listening test: how long a refusal takes, how long a served call takes,
  and how long each of the rater's actions takes.

Every visitor is a raw HTTP client bound to its own loopback address (127.0.0.K), so the app
sees distinct addresses without any test hook.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
from gradio_client import Client

from demo.controller import Controller
from demo.listening import ListeningStore
from demo.listening.clips import ClipServer
from demo.serving import ServingLayout, launch
from demo.ui import build_app
from fgg.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS
from fgg.generate import Generator
from fgg.precision import PRECISION_HELP, PRECISIONS

FLOOD_CALLS = 40


def percentiles(seconds: list[float]) -> dict:
    """p50 and p95 (nearest rank) of ``seconds``, and how many."""
    ranked = sorted(seconds)
    if not ranked:
        return {"n": 0}
    p95 = ranked[min(len(ranked) - 1, round(0.95 * len(ranked) + 0.5) - 1)]
    return {"n": len(ranked), "p50_s": round(statistics.median(ranked), 3), "p95_s": round(p95, 3)}


class Visitor:
    """One visitor of the app at ``url`` from loopback ``address``: joins the queue and reads
    its results as the browser does (``/queue/join`` + ``/queue/data``), and calls the
    listening page's events (``/run/predict``)."""

    def __init__(self, url: str, address: str = "127.0.0.1"):
        self.url = url
        self.http = httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=600)
        self._sessions = 0
        self.name = address

    def join(self, fn: int, data: list) -> tuple[httpx.Response, str]:
        self._sessions += 1
        session = f"bench-{self.name}-{self._sessions}-{time.monotonic_ns()}"
        body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
        return self.http.post("gradio_api/queue/join", json=body), session

    def result(self, session: str) -> list:
        """The output data of ``session``'s job, once it completes (``RuntimeError`` if it failed)."""
        with self.http.stream("GET", f"gradio_api/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    message = json.loads(line[5:])
                    if not message.get("success"):
                        raise RuntimeError(str(message.get("output"))[:300])
                    return message["output"]["data"]
        raise RuntimeError(f"{session}: the stream ended without a result")

    def generate(self, fn: int, data: list) -> float:
        """One ``/generate`` call to playable audio: seconds."""
        began = time.perf_counter()
        response, session = self.join(fn, data)
        response.raise_for_status()
        audio = self.result(session)[0]
        self.http.get(audio["url"]).raise_for_status()
        return time.perf_counter() - began

    def event(self, fn: int, data: list) -> list:
        body = {"data": data, "fn_index": fn, "session_hash": f"bench-{self.name}", "event_data": None}
        response = self.http.post("gradio_api/run/predict", json=body)
        response.raise_for_status()
        return response.json()["data"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(generator: Generator, name: str, layout: ServingLayout) -> Iterator[tuple[str, object]]:
    """The app on a free port, served with ``layout``: its URL and its ``gr.Blocks``."""
    tmp = Path(tempfile.mkdtemp(prefix="fgg-bench-"))
    store = ListeningStore(f"sqlite:///{tmp / 'bench.db'}")
    for study in store.studies.values():  # the studies' renders cached before anything is timed
        ClipServer(study).prerender().join()
    app = build_app(Controller({name: generator}), store)
    port = free_port()
    launch(app, layout, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", app
    finally:
        app.close()
        shutil.rmtree(tmp, ignore_errors=True)


def event_id(url: str, name: str) -> int:
    """The fn index of the event named ``name`` (an API name, or a private event's own) on the
    server at ``url``."""
    config = httpx.get(url + "config", timeout=30).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == name)


def generate_data(url: str, **values) -> list:
    """A ``/generate`` join's data: the API's defaults, with ``values`` instead."""
    info = httpx.get(url + "gradio_api/info", timeout=30).json()["named_endpoints"]["/generate"]["parameters"]
    return [values.get(p["parameter_name"], p.get("parameter_default")) for p in info]


def at_once(calls: list[Callable[[], object]]) -> list:
    """Run ``calls`` in threads started together; their results (or exceptions), in order."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(k: int) -> None:
        barrier.wait()
        try:
            results[k] = calls[k]()
        except Exception as err:  # noqa: BLE001  (reported as the run's result)
            results[k] = err

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def bench_click_to_audio(url: str, args) -> dict:
    """Click to playable audio (``args.bars`` bars), its median, and the median of each part of
    it: the server's parts as ``Controller.generate`` times them (``timings_s``: sampling, MIDI,
    synthesis, loudness, WAV, figure, metrics, the wait for the MP3 encoder), and the rest —
    Gradio's queue, serialisation and transfer, and fetching the MP3 — as the click's time
    minus the server's total."""
    client = Client(url, verbose=False, download_files=False)  # the page fetches only the audio it plays
    request = {"chords": args.chords, "rhythm": args.rhythm, "bars": args.bars}
    client.predict(**request, api_name="/generate")  # warm-up
    runs, parts, first_audio = [], [], []
    for seed in range(args.repeats):
        began = time.perf_counter()
        outputs = client.predict(**request, seed=seed, api_name="/generate")
        audio, metrics = outputs[0], outputs[3]  # the API's returns: audio, midi, figure, metrics, …
        playable = httpx.get(audio["url"], timeout=60)
        runs.append(time.perf_counter() - began)
        assert audio["url"].endswith(".mp3") and playable.status_code == 200 and playable.content
        parts.append(metrics["timings_s"] | {"outside_the_server": runs[-1] - metrics["timings_s"]["total"]})
        first_audio.append(metrics["first_audio_s"])
    medians = {part: round(statistics.median(p[part] for p in parts), 3) for part in parts[0]}
    return {
        "bars": args.bars,
        "click_to_audio_median_s": round(statistics.median(runs), 3),
        "first_audio_in_the_server_median_s": round(statistics.median(first_audio), 3),
        "overhead_median_s": round(statistics.median(r - p["sampling"] for r, p in zip(runs, parts, strict=True)), 3),
        "parts_median_s": medians,
        "runs_s": [round(r, 3) for r in runs],
    }


# What the page shows: whether the player has audio, whether the piece is finished.
PLAYER_STATE = """() => ({
    audio: (document.querySelector('#audio-out audio') || {buffered: []}).buffered.length > 0,
    done: document.querySelector('#generate-status').innerText.includes('✓'),
    error: document.querySelector('#generate-status').innerText.includes('Error'),
})"""
CHROMIUM = "/usr/bin/chromium"


def bench_first_sound(url: str, args) -> dict:
    """Click to first sound in Chromium, as a visitor hears it: Generate clicked on a fresh page
    with ``args.bars`` bars of ``args.chords``, timed until the player has audio (the first
    streamed window, through Gradio's AAC stream) and until the piece is finished (✓)."""
    # Playwright (a dev requirement) drives a browser only this measurement needs.
    from playwright.sync_api import sync_playwright

    bars = [b.strip() for b in args.chords.split("|")]
    chords = " | ".join((bars * args.bars)[: args.bars])
    sound, finished, server = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        for run in range(args.repeats + 1):  # the first is a warm-up
            page = browser.new_page()
            page.goto(url)
            page.locator("#chords textarea").fill(chords)
            page.locator("#generate").click()
            clicked = time.perf_counter()
            heard = None
            while not (state := page.evaluate(PLAYER_STATE))["done"]:
                if state["error"]:
                    raise RuntimeError(page.locator("#generate-status").inner_text())
                if heard is None and state["audio"]:
                    heard = time.perf_counter() - clicked
                page.wait_for_timeout(50)
            if run:
                sound.append(heard if heard is not None else time.perf_counter() - clicked)
                finished.append(time.perf_counter() - clicked)
                if page.locator("#metrics-out").count():  # an older app has no such element
                    metrics = page.locator("#metrics-out").inner_text().replace("\n", "")
                    total = re.search(r'"total":\s*([0-9.]+)', metrics)
                    if total:
                        server.append(float(total.group(1)))
            page.close()
        browser.close()
    return {
        "bars": args.bars,
        "first_sound_median_s": round(statistics.median(sound), 3),
        "finished_median_s": round(statistics.median(finished), 3),
        "in_the_server_median_s": round(statistics.median(server), 3) if server else None,
        "first_sound_s": [round(s, 3) for s in sound],
        "finished_s": [round(s, 3) for s in finished],
    }


def bench_users(url: str, users: int, calls_each: int, chords: str) -> dict:
    """``users`` visitors, each making ``calls_each`` 4-bar calls back to back."""
    fn = event_id(url, "generate")
    visitors = [Visitor(url, f"127.0.0.{10 + k}") for k in range(users)]

    def visit(visitor: Visitor, k: int) -> list[float]:
        return [visitor.generate(fn, generate_data(url, chords=chords, seed=100 * k + n)) for n in range(calls_each)]

    began = time.perf_counter()
    latencies = at_once([partial(visit, v, k) for k, v in enumerate(visitors)])
    wall = time.perf_counter() - began
    failed = [r for r in latencies if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} visitor(s) failed: {failed[0]}")
    flat = [s for runs in latencies for s in runs]
    return {"users": users, "calls_per_s": round(len(flat) / wall, 3), "wall_s": round(wall, 2), **percentiles(flat)}


@dataclass(frozen=True)
class RaterPage:
    """What a rater's client needs of the listening page: the start and submit events' fn
    indices, their inputs' and outputs' component ids, and the ids of the page's controls by
    their ``elem_id``. Plain data, so the client can run in a process of its own."""

    start: int
    submit: int
    inputs: dict[int, list[int]]
    outputs: dict[int, list[int]]
    elements: dict[str, int]

    @classmethod
    def of(cls, app) -> RaterPage:
        start, submit = (next(i for i, fn in app.fns.items() if fn.name == name) for name in ("start", "submit"))
        return cls(
            start=start,
            submit=submit,
            inputs={fn: [block._id for block in app.fns[fn].inputs] for fn in (start, submit)},
            outputs={fn: [block._id for block in app.fns[fn].outputs] for fn in (start, submit)},
            elements={block.elem_id: block._id for block in app.blocks.values() if getattr(block, "elem_id", None)},
        )

    def answers(self) -> dict[int, object]:
        """Every rating 4, the preference "same"."""
        ratings = [k for k in self.elements if re.fullmatch(r"listening-[ab]-\w+", k)]
        return {self.elements[k]: 4 for k in ratings} | {self.elements["listening-preference"]: "same"}


def rater_actions(url: str, page: RaterPage, stop: threading.Event) -> list[float]:
    """A rater pressing Start (or continue) and submitting answers until ``stop``: seconds per action."""
    rater = Visitor(url, "127.0.0.99")
    values: dict[int, object] = {page.elements["listening-consent"]: True}
    actions = []
    while not stop.is_set():
        for fn in (page.start, page.submit):
            if fn == page.submit:
                values |= page.answers()
            began = time.perf_counter()
            data = rater.event(fn, [values.get(i) for i in page.inputs[fn]])
            actions.append(time.perf_counter() - began)
            for block_id, value in zip(page.outputs[fn], data, strict=True):
                if not (isinstance(value, dict) and value.get("__type__") == "update"):
                    values[block_id] = value
                elif "value" in value:
                    values[block_id] = value["value"]
    return actions


def bench_flood(url: str, page: RaterPage, addresses: int, chords: str) -> dict:
    """``FLOOD_CALLS`` 4-bar ``/generate`` calls at once, spread over ``addresses`` visitors,
    while a rater goes on; the served calls are followed to their audio."""
    fn = event_id(url, "generate")
    data = generate_data(url, chords=chords)
    visitors = [Visitor(url, f"127.0.0.{20 + k}") for k in range(addresses)]
    stop = threading.Event()
    with ThreadPoolExecutor(1) as rater_thread:
        rater = rater_thread.submit(rater_actions, url, page, stop)
        time.sleep(0.5)  # the rater is on a pair before the flood comes

        def call(visitor: Visitor) -> tuple[str, float]:
            began = time.perf_counter()
            response, session = visitor.join(fn, data)
            if response.status_code != 200:
                return "refused", time.perf_counter() - began
            visitor.result(session)
            return "served", time.perf_counter() - began

        outcomes = at_once([partial(call, visitors[k % addresses]) for k in range(FLOOD_CALLS)])
        stop.set()
        actions = rater.result()
    failed = [o for o in outcomes if isinstance(o, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} call(s) failed: {failed[0]}")
    return {
        "addresses": addresses,
        "refused": percentiles([s for what, s in outcomes if what == "refused"]),
        "served": percentiles([s for what, s in outcomes if what == "served"]),
        "rater": percentiles(actions),
    }


def in_client_process(work: Callable, *args):
    """``work(*args)`` in a process of its own, as visitors are: the load's client threads must
    not compete with the server for this process's GIL, and (at the lowest CPU priority) take
    only the cycles the server leaves, as visitors on machines of their own would."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as client:
        return client.submit(_at_lowest_priority, work, *args).result()


def _at_lowest_priority(work: Callable, *args):
    os.nice(19)
    return work(*args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(SHIPPED_MODELS))
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument("--repeats", type=int, default=7, help="click to audio: timed calls")
    parser.add_argument("--chords", default="C G | Am F")
    parser.add_argument("--rhythm", default="none", help="a rhythm pattern (CFG then runs two predictions per step)")
    parser.add_argument("--bars", type=int, default=4, help="click to audio: the piece's length (4-32)")
    parser.add_argument("--users", type=int, nargs="+", help="concurrent visitors to measure, e.g. 1 2 4")
    parser.add_argument("--calls", type=int, default=4, help="--users: calls per visitor")
    parser.add_argument(
        "--layouts",
        nargs="+",
        default=["auto"],
        help="serving layouts, JOBSxTHREADS (e.g. 2x2 1x2 2x1) or auto (this machine's: demo.serving)",
    )
    parser.add_argument(
        "--url", help="--users against a server already running there (e.g. another version of the app)"
    )
    parser.add_argument(
        "--flood", action="store_true", help=f"{FLOOD_CALLS} calls at once, from 1 and from 8 addresses"
    )
    parser.add_argument(
        "--browser", action="store_true", help="click to first sound and to the end, in Chromium (--bars, --repeats)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.url:  # a server of its own: only its /generate is measured
        in_client_process(bench_users, args.url, 1, 1, args.chords)  # warm-up
        users = [in_client_process(bench_users, args.url, n, args.calls, args.chords) for n in args.users or [1]]
        print(json.dumps({"url": args.url, "users": users}))
        return 0
    source = args.checkpoint or args.model
    generator = Generator.from_checkpoint(source, "cpu", args.precision)
    report: dict = {"model": source, "precision": generator.precision, "cores": ServingLayout.cores()}
    for text in args.layouts:
        layout = ServingLayout.parse(text)
        with serving(generator, args.model, layout) as (url, app):
            measured: dict = {"layout": str(layout)}
            if args.users or args.flood:
                in_client_process(bench_users, url, 1, 1, args.chords)  # warm-up
            if args.users:
                measured["users"] = [
                    in_client_process(bench_users, url, n, args.calls, args.chords) for n in args.users
                ]
            if args.flood:
                page = RaterPage.of(app)
                measured["flood"] = [in_client_process(bench_flood, url, page, n, args.chords) for n in (1, 8)]
            if args.browser:
                measured |= bench_first_sound(url, args)
            elif not (args.users or args.flood):
                measured |= bench_click_to_audio(url, args) | {"rhythm": args.rhythm}
        report.setdefault("runs", []).append(measured)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
