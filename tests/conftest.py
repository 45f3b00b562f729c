"""Shared fixtures. Tests that need raw POP909 read it from ``$FGG_POP909_DIR`` or
``../shared/data/pop909``; when it is missing they skip visibly, or fail when
``FGG_REQUIRE_DATA=1`` (set by ``.ci/run``)."""

import os

import pytest

from fgg.data import build_songs, find_pop909_dir


@pytest.fixture(scope="session")
def pop909_dir():
    try:
        return find_pop909_dir()
    except FileNotFoundError as err:
        if os.environ.get("FGG_REQUIRE_DATA") == "1":
            pytest.fail(f"FGG_REQUIRE_DATA=1 but POP909 is missing: {err}")
        pytest.skip(f"POP909 not available: {err}")


@pytest.fixture(scope="session")
def collection(pop909_dir):
    """All of POP909, through the real cache (a cache hit after the first run)."""
    songs, _ = build_songs(pop909_dir)
    return songs


@pytest.fixture(scope="session", autouse=True)
def isolated_render_cache(tmp_path_factory):
    """The listening studies' renders (``demo.listening.clips``) go to a folder of the test run's
    own instead of the user's ``~/.cache/fgg-music``."""
    folder = tmp_path_factory.mktemp("render-cache")
    previous = os.environ.get("FGG_CACHE_DIR")
    os.environ["FGG_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("FGG_CACHE_DIR", None)
    else:
        os.environ["FGG_CACHE_DIR"] = previous
