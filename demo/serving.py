"""How the app is served: how many generations run at once and how many torch threads each
uses (``ServingLayout``, chosen from the machine's core count), the queue, and the launch with
the public-Space bounds."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import gradio as gr
import torch

from demo.guard import follow_queue, http_error_handlers
from demo.limits import MAX_UPLOAD
from demo.workers import CORES

QUEUE_SIZE = 32  # Gradio's own bound on waiting requests, above the sum of the admissions
DELETE_CACHE = (300, 1800)  # every 5 min, delete Gradio's cached files (uploads, outputs) older than 30 min


@dataclass(frozen=True)
class ServingLayout:
    """``jobs`` generations at once (the queue's concurrency for ``/generate`` and ``/compare``),
    sharing ``threads`` torch threads: a generation running alone uses them all, ``k`` at once
    ``threads // k`` each, at least one (``demo.workers``); every generation runs below the
    server's own threads in CPU priority.

    ``for_cores``: two jobs sharing every core. Measured on 2 cores side by side (``python -m
    demo.bench --users 1 2 4 --calls 3 --layouts 2x2 2x1 1x2``, README "Serving"): a lone
    call with both cores took 2.3 s against 3.8 s with one; with 4 visitors the two jobs, one
    core each, served 0.57 calls/s (0.51 with one thread each always, 0.36 one job at a time:
    a second job overlaps the first's single-threaded parts — MIDI, FluidSynth, MP3, figure,
    metrics). Set explicitly, so the layout is this and not a library default."""

    jobs: int
    threads: int

    @staticmethod
    def cores() -> int:
        """The cores this process may run on (a container's or ``taskset``'s limit included)."""
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @classmethod
    def for_cores(cls, cores: int) -> ServingLayout:
        return cls(jobs=min(2, max(1, cores)), threads=max(1, cores))

    @classmethod
    def parse(cls, text: str) -> ServingLayout:
        """``"auto"`` (this machine's ``for_cores``) or ``"JOBSxTHREADS"``, e.g. ``"2x1"``."""
        if text == "auto":
            return cls.for_cores(cls.cores())
        match = re.fullmatch(r"([1-9]\d*)x([1-9]\d*)", text)
        if not match:
            raise ValueError(f"serving layout {text!r}: give auto or JOBSxTHREADS, e.g. 2x1")
        return cls(jobs=int(match[1]), threads=int(match[2]))

    def __str__(self) -> str:
        return f"{self.jobs}x{self.threads}"

    def apply(self, app: gr.Blocks) -> None:
        """Share ``threads`` among the generations (``demo.workers.CORES``), give the server's
        own threads as many, and queue ``app``."""
        CORES.cores = self.threads
        torch.set_num_threads(self.threads)
        # api_open=False: a queued endpoint is reached only through the queue (its validator,
        # its admission); Gradio would otherwise also run it on a direct POST (/run/generate).
        app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=self.jobs, api_open=False)


def launch(app: gr.Blocks, layout: ServingLayout | None = None, **kwargs):
    """Queue ``app`` with ``layout`` (default: this machine's) and launch it with the
    public-Space bounds (uploads ≤ 1 MB, refused before they are stored); ``kwargs`` go to
    ``Blocks.launch``."""
    (layout or ServingLayout.for_cores(ServingLayout.cores())).apply(app)
    follow_queue(app)
    return app.launch(
        max_file_size=MAX_UPLOAD, footer_links=["api", "gradio"], app_kwargs=http_error_handlers(), **kwargs
    )
