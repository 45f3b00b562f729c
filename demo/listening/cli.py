"""``python -m demo.listening build|prompts|results|export``: build a study's clips, write its
prompts for another model, analyse its answers, export them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from demo.listening.admin import AdminGate
from demo.listening.build import BuildError, build_study, build_summary, export_prompts
from demo.listening.export import answers_csv, answers_json
from demo.listening.report import report_html
from demo.listening.store import ListeningStore, StudyStore
from demo.listening.study import STUDIES_DIR, StudyError, load_study
from demo.listening.tidy import export_rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.listening", description="Listening studies.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a study's clips (studies/<id>.toml) into assets/studies/<id>/")
    build.add_argument("study", help="a study file")
    prompts = sub.add_parser("prompts", help="a study's prompts for another model, or one of our systems as a folder")
    prompts.add_argument("study", help="a study file")
    prompts.add_argument("--out", required=True, help="the folder to write")
    prompts.add_argument("--system", help="write this system's clips (<id>.mid, manifest.json), e.g. ground_truth")
    results = sub.add_parser("results", help="a study's analysis as JSON (and an HTML report)")
    results.add_argument("--study", required=True, help="the study's id (studies/<id>.toml)")
    results.add_argument("--html", help="also write the report (plots and tables) to this HTML file")
    results.add_argument("--boot", type=int, default=2000, help="bootstrap replicates")
    export = sub.add_parser("export", help="a study's answers, one row per rating (needs the admin password)")
    export.add_argument("--study", required=True, help="the study's id")
    export.add_argument("--password", required=True)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    return parser


def run_build(args: argparse.Namespace) -> int:
    try:
        items = build_study(load_study(args.study))
    except (StudyError, BuildError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(build_summary(items), indent=1))
    return 0


def run_prompts(args: argparse.Namespace) -> int:
    try:
        path = export_prompts(load_study(args.study, folders=False), Path(args.out), args.system)
    except (StudyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"written": str(path)}))
    return 0


def study_store(study_id: str) -> StudyStore:
    """The study's view of the database (``FGG_DB_URL`` or the default SQLite file)."""
    study = load_study(STUDIES_DIR / f"{study_id}.toml")
    return ListeningStore().study(study.id)


def run_results(args: argparse.Namespace) -> int:
    try:
        store = study_store(args.study)
    except (StudyError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = store.results(args.boot)
    print(json.dumps(result, indent=1))
    if args.html:
        Path(args.html).write_text(report_html(result, store.study.title), encoding="utf-8")
    return 0


def run_export(args: argparse.Namespace) -> int:
    try:
        AdminGate().check(args.password, "cli")
        store = study_store(args.study)
    except (PermissionError, StudyError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = export_rows(store.study, *store.frames())
    sys.stdout.write(answers_csv(rows) if args.format == "csv" else answers_json(rows))
    return 0


COMMANDS = {"build": run_build, "prompts": run_prompts, "results": run_results, "export": run_export}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
