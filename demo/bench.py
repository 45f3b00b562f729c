"""Click-to-audio benchmark of the app (``python -m demo.bench``).

Starts the app in-process on a free port and calls ``/generate`` through gradio_client the
way the browser does (4 bars, default settings: FGG on, CFG 7.5, 10 steps), timing from the
request to the returned, playable audio (sampling + MIDI + FluidSynth + loudness + MP3 and WAV
+ figure + metrics + transfer). Prints one JSON object with the median and all runs.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gradio_client import Client

from demo.controller import Controller
from demo.listening import ListeningStore
from demo.ui import build_app, launch
from fgg.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS
from fgg.generate import Generator
from fgg.precision import PRECISION_HELP, PRECISIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(SHIPPED_MODELS))
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chords", default="C G | Am F")
    parser.add_argument("--rhythm", default="none", help="a rhythm pattern (CFG then runs two predictions per step)")
    args = parser.parse_args(argv)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="fgg-bench-"))
    source = args.checkpoint or args.model
    generator = Generator.from_checkpoint(source, "cpu", args.precision)
    app_precision = generator.precision
    app = build_app(Controller({args.model: generator}), ListeningStore(f"sqlite:///{tmp / 'bench.db'}", tmp))
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        # Like the browser: the page gets file URLs and fetches only the audio it plays (the
        # MIDI and WAV downloads are fetched when clicked).
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        client.predict(chords=args.chords, rhythm=args.rhythm, api_name="/generate")  # warm-up
        runs = []
        for seed in range(args.repeats):
            began = time.perf_counter()
            audio, *_ = client.predict(chords=args.chords, rhythm=args.rhythm, seed=seed, api_name="/generate")
            playable = httpx.get(audio["url"], timeout=60)
            runs.append(time.perf_counter() - began)
            assert audio["url"].endswith(".mp3") and playable.status_code == 200 and playable.content
    finally:
        app.close()
    print(
        json.dumps(
            {
                "click_to_audio_4bar_median_s": round(statistics.median(runs), 3),
                "runs_s": [round(r, 3) for r in runs],
                "model": source,
                "rhythm": args.rhythm,
                "precision": app_precision,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
