"""Answers stored before studies were files: the one pairwise test (tables ``pairs``, ``raters``,
``ratings``) carried into the study it became, ``fgg-vs-baselines``, once, so that no answer is
lost and a rater holding an old token goes on where they stopped.

A legacy pair is FGG against one system on one POP909 segment; its study item is the one with
the same segment, kind and systems (``seg0311:trial:fgg|inpaint``). Each legacy answer becomes
an answer (the sides as heard, the ratings, the preference) and an assignment at the rater's
next position; its order seed is unknown and stored as 0. Only raters not carried yet are read
(``study_raters`` holds the carried ones), so a restart reads nothing and changes nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from demo.listening.schema import Answer, Assignment, Item, Rater, utc

LEGACY_STUDY = "fgg-vs-baselines"
CRITERIA = ("creativity", "harmony", "naturalness")  # the legacy test's, as its columns
log = logging.getLogger("fgg.listening")


def legacy_item_key(segment: int, system_x: str, system_y: str) -> str:
    kind = "attention" if system_y == "degraded" else "trial"
    return f"seg{segment:04d}:{kind}:{system_x}|{system_y}"


def import_legacy(engine, study: str, config_hash: str) -> int:
    """Carry the legacy answers into ``study``; returns how many were carried (0 when there are
    none, or when they were carried before)."""
    if not inspect(engine).has_table("ratings") or not inspect(engine).has_table("pairs"):
        return 0
    columns = ", ".join(f"r.a_{c}, r.b_{c}" for c in CRITERIA)
    query = text(
        "SELECT r.rater_id, rt.created_at, p.segment, p.system_x, p.system_y, r.system_a, r.system_b, "
        f"r.preference, r.submitted_at, {columns} FROM ratings r JOIN pairs p ON r.pair_id = p.id "
        "JOIN raters rt ON r.rater_id = rt.id WHERE r.rater_id NOT IN (SELECT id FROM study_raters) "
        "ORDER BY r.rater_id, r.submitted_at"
    )
    with Session(engine) as session:
        rows = session.execute(query).mappings().all()
        items = {item.key: item for item in session.scalars(select(Item).where(Item.study == study))}
        carried, positions = 0, {}
        for row in rows:
            rater = row["rater_id"]
            item = items.get(legacy_item_key(row["segment"], row["system_x"], row["system_y"]))
            if item is None:
                continue
            if rater not in positions:
                session.add(Rater(id=rater, study=study, created_at=utc(row["created_at"])))
                positions[rater] = 0
            positions[rater] += 1
            shown = [row["system_a"], row["system_b"]]
            order = [item.systems.index(system) for system in shown]
            session.add(
                Assignment(rater_id=rater, item_id=item.id, position=positions[rater], order_seed=0, order=order)
            )
            session.add(
                Answer(
                    rater_id=rater,
                    item_id=item.id,
                    shown=shown,
                    scores={c: [row[f"a_{c}"], row[f"b_{c}"]] for c in CRITERIA},
                    preference=row["preference"],
                    order_seed=0,
                    config_hash=config_hash,
                    submitted_at=utc(row["submitted_at"]),
                )
            )
            carried += 1
        try:
            session.commit()
        except IntegrityError:  # another process carried them at the same moment
            session.rollback()
            return 0
    if carried:
        log.info(
            "carried %d answers of %d raters from the legacy listening test into %s", carried, len(positions), study
        )
    return carried
