"""Listening studies: each a file (``studies/<id>.toml``), built into clips, served blind at
``/listen-<id>`` (the default study at ``/listen``), its answers in a concurrent-safe store
and analysed as a reviewer expects.

    python -m demo.listening build studies/<id>.toml       # its clips, content-addressed, rendered
    python -m demo.listening prompts studies/<id>.toml --out DIR [--system NAME]
    python -m demo.listening results --study ID [--html report.html]
    FGG_ADMIN_PASSWORD=... python -m demo.listening export --study ID --password ... [--format csv|json]

One module per responsibility: ``study`` (a study file, read and checked; its build),
``build`` (its clips and items), ``schema`` (tables, a trial, what an answer may hold),
``store`` (``ListeningStore``, every study's raters, assignments and answers; SQLite in WAL mode
or PostgreSQL; ``StudyStore``, one study's view), ``analysis`` (the statistics), ``report``
(its plots and HTML), ``tidy`` (the long export rows), ``export`` (formula-safe CSV, JSON),
``admin`` (``AdminGate``: the password, with back-off), ``clips`` (the audio, rendered once
into a cache kept across restarts, and each rater's own clip) and ``cli``. The pages that show
a study are ``demo.tabs.listen`` and ``demo.tabs.admin``; nothing here imports them.
"""

from demo.listening.admin import AdminGate
from demo.listening.cli import main
from demo.listening.export import safe_cell
from demo.listening.schema import LABELS, SAME, Answer, Assignment, Base, Item, Rater, Trial, score_value
from demo.listening.store import ListeningStore, StudyStore, database_url, storage_warning
from demo.listening.study import BuiltStudy, Study, StudyError, load_built, load_study, shipped_studies

__all__ = [
    "LABELS",
    "SAME",
    "AdminGate",
    "Answer",
    "Assignment",
    "Base",
    "BuiltStudy",
    "Item",
    "ListeningStore",
    "Rater",
    "Study",
    "StudyError",
    "StudyStore",
    "Trial",
    "database_url",
    "load_built",
    "load_study",
    "main",
    "safe_cell",
    "score_value",
    "shipped_studies",
    "storage_warning",
]
