"""Frozen behaviour (issue 21): the MIDI bytes of six fixed requests to the shipped models
(fp32) and the API an outside client sees (``gradio_client`` ``view_api()``) must not change
under a redesign. The expected values are in ``tests/golden.json``, written once by
``python -m tests.test_golden --write`` on the code before the redesign; a request added later
(the melody's shape, issue 23) and the API's later parameters (appended, so positional
clients keep working) were added with ``--add``, which keeps every value already there."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN_FILE = Path(__file__).with_name("golden.json")
SEGMENT = 7  # a validation segment with a melody (assets/pop909_valid_segments.npz)

# name -> (keyword arguments of fgg.generate.generate); every one fp32 on the CPU.
REQUESTS: dict[str, dict] = {
    "melody_and_rhythm": {"chords": "C G | Am F", "rhythm": "eighth_arpeggio", "seed": 1, "melody": "segment"},
    "chords_only": {"chords": "Dm7 | G7 | Cmaj7 | Cmaj7", "seed": 2},
    "twelve_bars": {"chords": "C | Am | F | G | Em | Am | Dm | G7 | C | F | G | C", "bars": 12, "seed": 3},
    "user_scale_strict": {
        "chords": "Dm7 | G | Dm7 | G",
        "scale": "D dorian",
        "scale_mode": "strict",
        "seed": 4,
        "rhythm": "block_quarters",
    },
    # the melody unconstrained, as before issue 23 made the melody's shape the default ("auto")
    "combined_mode": {
        "chords": "Am | F | Dm | E7",
        "mode": "melody+accompaniment",
        "bars": 8,
        "seed": 5,
        "melody_rhythm": "off",
    },
    "combined_mode_melody_shape": {"chords": "Am | F | Dm | E7", "mode": "melody+accompaniment", "bars": 8, "seed": 5},
    "strength_half": {"chords": "C G | Am F", "strength": 0.5, "seed": 6, "rhythm": "ballad"},
}


def midi_digest(name: str) -> str:
    from fgg.data import load_valid_segments
    from fgg.generate import generate

    kwargs = dict(REQUESTS[name])
    if kwargs.get("melody") == "segment":
        kwargs["melody"] = load_valid_segments()["melody"][SEGMENT]
    result = generate(**kwargs, device="cpu", precision="fp32")
    buffer = io.BytesIO()
    result.midi.write(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def api_view() -> dict:
    """``view_api()`` of the app serving three tiny models (names as the shipped ones)."""
    import socket
    import tempfile

    import torch
    from gradio.context import Context
    from gradio_client import Client

    from demo.controller import Controller
    from demo.listening import ListeningStore
    from demo.ui import build_app, launch
    from fgg.generate import Generator
    from fgg.model import PRESETS, UNet, model_config

    torch.manual_seed(0)
    generators = {
        "paper": Generator(UNet(PRESETS["tiny"])),
        "small": Generator(UNet(PRESETS["tiny"])),
        "combined-paper": Generator(UNet(model_config("tiny", "melody+accompaniment"))),
    }
    with tempfile.TemporaryDirectory() as tmp:
        # Gradio numbers components with one process-wide counter, and unlabeled API returns are
        # named after those numbers ("value_69"): build the app as a fresh process (a deployed
        # Space) does, whatever apps earlier tests built in this one.
        before, Context.id = Context.id, 0
        app = build_app(Controller(generators), ListeningStore(f"sqlite:///{tmp}/db.sqlite"))
        Context.id = max(before, Context.id)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            view = Client(f"http://127.0.0.1:{port}/", verbose=False).view_api(print_info=False, return_format="dict")
        finally:
            app.close()
    return json.loads(json.dumps(view))  # tuples -> lists, as stored


def golden() -> dict:
    if not GOLDEN_FILE.is_file():
        pytest.fail(f"{GOLDEN_FILE.name} is missing: it is committed; never regenerate it to make a test pass")
    return json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(REQUESTS))
def test_midi_bytes_are_frozen(name):
    assert midi_digest(name) == golden()["midi_sha256"][name]


def test_api_view_is_frozen():
    assert api_view() == golden()["view_api"]


def test_segment_has_a_melody():
    from fgg.data import load_valid_segments

    assert np.asarray(load_valid_segments()["melody"][SEGMENT]).any()


if __name__ == "__main__":
    if sys.argv[1:] not in (["--write"], ["--add"]):
        sys.exit("usage: python -m tests.test_golden --write | --add (new requests, and the API view)")
    if sys.argv[1] == "--add":
        doc = golden()
        doc["midi_sha256"] |= {name: midi_digest(name) for name in REQUESTS if name not in doc["midi_sha256"]}
        doc["view_api"] = api_view()
    else:
        doc = {"midi_sha256": {name: midi_digest(name) for name in REQUESTS}, "view_api": api_view()}
    GOLDEN_FILE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(doc["midi_sha256"], indent=1))
