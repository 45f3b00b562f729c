"""Listening test: a pool of pre-generated pairs and a concurrent-safe answer store.

    python -m demo.listening build --pairs 12 [--out assets/listening] [--checkpoint ...]
    python -m demo.listening results [--html plots.html]  # per-system means, CIs, preference test
    FGG_ADMIN_PASSWORD=... python -m demo.listening export --password ... [--format csv|json] > answers.csv

One module per responsibility: ``schema`` (tables, a trial, what an answer may hold),
``store`` (``ListeningStore``: raters, blind plans, answers; SQLite in WAL mode or PostgreSQL),
``stats`` (means, CIs, preference tests, flagged raters), ``figures`` (the results as plots),
``export`` (formula-safe CSV, JSON), ``admin`` (``AdminGate``: the password, with back-off),
``pool`` (building the pool of MIDI pairs and its attention check), ``clips`` (the pool's audio,
rendered once into a cache kept across restarts, and each rater's own clip) and ``cli``. The pages that
show the test are ``demo.tabs.listen`` and ``demo.tabs.admin``; nothing here imports them.
"""

from demo.listening.admin import AdminGate
from demo.listening.cli import main
from demo.listening.export import safe_cell
from demo.listening.pool import DEFAULT_BASELINES, POOL_DIR, add_attention_pair, build_pool, degrade
from demo.listening.schema import (
    ATTENTION_SYSTEM,
    CRITERIA,
    PREFERENCES,
    SCORES,
    Base,
    Pair,
    Rater,
    Rating,
    Trial,
    rating_value,
)
from demo.listening.stats import flagged_raters
from demo.listening.store import ListeningStore, database_url, storage_warning

__all__ = [
    "ATTENTION_SYSTEM",
    "CRITERIA",
    "DEFAULT_BASELINES",
    "POOL_DIR",
    "PREFERENCES",
    "SCORES",
    "AdminGate",
    "Base",
    "ListeningStore",
    "Pair",
    "Rater",
    "Rating",
    "Trial",
    "add_attention_pair",
    "build_pool",
    "database_url",
    "degrade",
    "flagged_raters",
    "main",
    "rating_value",
    "safe_cell",
    "storage_warning",
]
