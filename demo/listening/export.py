"""The answers as files an analyst opens: CSV that no spreadsheet will run, or JSON, built in
memory (nothing written to disk); timestamps are ISO-8601 UTC."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def safe_cell(value):
    """A CSV cell a spreadsheet will not run: text starting with = + - @ or a control
    character gets a leading apostrophe (OWASP's CSV-injection advice); numbers pass."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def answers_csv(answers: list[dict]) -> str:
    """``answers`` as CSV, one row each, every text cell formula-safe (``safe_cell``)."""
    buffer = io.StringIO()
    fields = list(answers[0]) if answers else ["rater", "item"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in a.items()} for a in answers)
    return buffer.getvalue()


def answers_json(answers: list[dict]) -> str:
    """``answers`` as a JSON document with the moment of export (UTC)."""
    return json.dumps({"exported_at": datetime.now(UTC).isoformat(), "answers": answers}, indent=1)
