"""How the app is served: the queue, its concurrency and torch's threads, chosen from the
machine's core count, and the launch with the public-Space bounds."""

from __future__ import annotations

import gradio as gr

from demo.guard import follow_queue
from demo.limits import MAX_UPLOAD

QUEUE_SIZE = 32  # Gradio's own bound on waiting requests, above the sum of the admissions
DELETE_CACHE = (300, 1800)  # every 5 min, delete Gradio's cached files (uploads, outputs) older than 30 min


def launch(app: gr.Blocks, **kwargs):
    """Queue and launch with the public-Space bounds (uploads ≤ 1 MB, refused before they are
    stored); ``kwargs`` go to ``Blocks.launch``."""
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=2)
    follow_queue(app)
    return app.launch(max_file_size=MAX_UPLOAD, footer_links=["api", "gradio"], **kwargs)
