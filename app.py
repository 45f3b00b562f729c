"""FGG Music app entry point: parse arguments, build the UI, launch."""
import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demo.ui import build_app  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="FGG Music Gradio app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args()
    build_app().queue(max_size=32, default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port)
