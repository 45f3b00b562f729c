"""How the app is served on the machine it runs on: never more busy threads than cores."""

import json

import pytest
import torch

from demo.listening import ListeningStore
from demo.serving import ServingLayout
from demo.ui import build_app, launch
from tests.test_app import controller, free_port  # noqa: F401  (fixture)


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 16, 64])
def test_the_layout_gives_each_job_its_own_cores(cores):
    layout = ServingLayout.for_cores(cores)
    assert 1 <= layout.jobs <= 2 and layout.threads >= 1
    assert layout.jobs * layout.threads <= cores
    assert layout.jobs * layout.threads > cores - layout.jobs  # no core left idle beyond rounding


def test_layouts_parse_and_refuse_clearly():
    assert ServingLayout.parse("2x1") == ServingLayout(jobs=2, threads=1)
    assert str(ServingLayout.parse("1x8")) == "1x8"
    assert ServingLayout.parse("auto") == ServingLayout.for_cores(ServingLayout.cores())
    for bad in ("2", "0x2", "2x", "two"):
        with pytest.raises(ValueError, match="give auto or JOBSxTHREADS"):
            ServingLayout.parse(bad)


def test_the_launched_app_never_runs_more_torch_threads_than_cores(controller, tmp_path):  # noqa: F811
    """What failed before: 2 generations at once, each with torch's default of one thread per
    core — twice as many busy threads as cores."""
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "manifest.json").write_text(json.dumps({"pairs": []}))
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "pool"))
    threads = torch.get_num_threads()
    try:
        launch(app, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        for fn in app.fns.values():  # as the queue does when a request first joins
            if fn.concurrency_id == "sample":
                app._queue.create_event_queue_for_fn(fn)
        jobs = app._queue.event_queue_per_concurrency_id["sample"].concurrency_limit
        expected = ServingLayout.for_cores(ServingLayout.cores())
        assert (jobs, torch.get_num_threads()) == (expected.jobs, expected.threads)
        assert jobs * torch.get_num_threads() <= ServingLayout.cores()
    finally:
        app.close()
        torch.set_num_threads(threads)
