"""FGG Music app: parse arguments, load the models once, build the UI, launch with a queue.

Everything the app writes while it serves (requests' files, listening clips, Gradio's cache)
goes to one temp folder of this process, removed when it stops: normally, by Ctrl-C, by
SIGTERM or SIGHUP; after a ``kill -9``, by the next start (``demo.workspace``).
"""

import argparse
import contextlib
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demo.workspace import exit_now, stop_on_signals, use_for_gradio  # noqa: E402  (imports no gradio)

use_for_gradio()  # before gradio is imported: some of its modules read GRADIO_TEMP_DIR at import

from demo.controller import Controller  # noqa: E402
from demo.ui import build_app, launch  # noqa: E402
from fgg.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS  # noqa: E402
from fgg.generate import Generator  # noqa: E402
from fgg.precision import PRECISION_HELP, PRECISIONS  # noqa: E402


def warm_up() -> None:
    """Do now what Gradio does when it runs its first event, whatever the event: import
    matplotlib and resolve its backend (to switch it while the event runs). Otherwise the first
    visitor after every start waits for it, e.g. a rater pressing the listening test's Start."""
    with contextlib.suppress(ImportError):
        import matplotlib

        matplotlib.get_backend()


def main(argv: list[str] | None = None) -> None:
    """``python app.py`` / ``fgg-app``."""
    stop_on_signals()
    parser = argparse.ArgumentParser(description="FGG Music Gradio app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--checkpoint", help="serve this checkpoint alone instead of the shipped models")
    parser.add_argument(
        "--add-model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also serve this checkpoint (e.g. a melody+accompaniment model: "
        "--add-model combined=runs/combined-small/model.safetensors); repeatable",
    )
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    args = parser.parse_args(argv)
    names = (
        {"custom": args.checkpoint}
        if args.checkpoint
        else {name: name for name in [DEFAULT_MODEL] + sorted(set(SHIPPED_MODELS) - {DEFAULT_MODEL})}
    )
    for spec in args.add_model:
        name, _, path = spec.partition("=")
        if not name or not path or name in names:
            parser.error(f"--add-model {spec!r}: give NAME=PATH with a new NAME")
        names[name] = path
    try:
        generators = {
            name: Generator.from_checkpoint(source, args.device, args.precision) for name, source in names.items()
        }
    except (FileNotFoundError, ValueError) as err:
        parser.error(f"{err} (train one with: python -m fgg.train --out runs/NAME)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warm_up()
    launch(build_app(Controller(generators)), server_name=args.host, server_port=args.port)
    exit_now()  # the server is closed (Ctrl-C, SIGTERM): clean up and leave, whatever still runs


if __name__ == "__main__":
    main()
