"""``python -m demo.listening build|prompts|results|export``: build a study (or the served pool),
write a study's prompts for another model, print the results, export the answers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from demo.listening.admin import AdminGate
from demo.listening.analysis import analyse
from demo.listening.build import BuildError, build_study, build_summary, export_prompts
from demo.listening.figures import results_html, results_view
from demo.listening.pool import DEFAULT_BASELINES, POOL_DIR, build_pool
from demo.listening.report import report_html
from demo.listening.store import ListeningStore
from demo.listening.study import STUDIES_DIR, StudyError, load_study
from demo.listening.tidy import pair_frames
from fgg.checkpoint import DEFAULT_MODEL, shipped

SERVED_STUDY = "fgg-vs-baselines"  # the pool the app serves today (assets/listening) is this study's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.listening", description="Listening-test pool and results.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a study's clips (studies/<id>.toml), or without one the served pool")
    build.add_argument("study", nargs="?", help="a study file: its clips go to assets/studies/<id>/")
    build.add_argument("--pairs", type=int, default=12)
    build.add_argument("--out", default=str(POOL_DIR))
    build.add_argument("--model", default=DEFAULT_MODEL, choices=shipped("accompaniment"))
    build.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    build.add_argument("--baselines", default=",".join(DEFAULT_BASELINES))
    prompts = sub.add_parser("prompts", help="a study's prompts for another model, or one of our systems as a folder")
    prompts.add_argument("study", help="a study file")
    prompts.add_argument("--out", required=True, help="the folder to write")
    prompts.add_argument(
        "--system", help="write this system's clips (<prompt-id>.mid + manifest.json), e.g. ground_truth"
    )
    results = sub.add_parser("results", help="print the results as JSON (with --study: the study's full analysis)")
    results.add_argument(
        "--study", help="a study's id (studies/<id>.toml): MOS, Bradley-Terry, tests, agreement, power"
    )
    results.add_argument("--html", help="also write the plots (with --study: the whole report) to this HTML file")
    results.add_argument("--boot", type=int, default=2000, help="bootstrap replicates (with --study)")
    export = sub.add_parser("export", help="print all answers as CSV or JSON (needs the admin password)")
    export.add_argument("--password", required=True)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    return parser


def run_build(args: argparse.Namespace) -> int:
    if args.study:
        try:
            study = load_study(args.study)
            items = build_study(study)
        except (StudyError, BuildError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(json.dumps(build_summary(items), indent=1))
        return 0
    manifest = build_pool(args.pairs, Path(args.out), args.checkpoint or args.model, tuple(args.baselines.split(",")))
    print(json.dumps({"manifest": str(manifest), "pairs": args.pairs}))
    return 0


def run_prompts(args: argparse.Namespace) -> int:
    try:
        path = export_prompts(load_study(args.study, folders=False), Path(args.out), args.system)
    except (StudyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"written": str(path)}))
    return 0


def run_study_results(args: argparse.Namespace) -> int:
    """The analysis of one study's answers (``demo.listening.analysis``) and its HTML report."""
    try:
        study = load_study(STUDIES_DIR / f"{args.study}.toml")
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The store holds the answers of the study the app serves; any other has none yet.
    answers = ListeningStore().answers() if study.id == SERVED_STUDY else []
    ratings, choices = pair_frames(answers)
    criteria = [c.name for c in study.criteria]
    result = analyse(ratings, choices, reference=study.reference, criteria=criteria, n_boot=args.boot)
    result = {"study": study.id, "config_hash": study.config_hash, "title": study.title} | result
    print(json.dumps(result, indent=1))
    if args.html:
        Path(args.html).write_text(report_html(result, study.title), encoding="utf-8")
    return 0


def run_results(args: argparse.Namespace) -> int:
    if args.study:
        return run_study_results(args)
    store = ListeningStore()
    answers = store.answers()
    result = store.results(answers)
    print(json.dumps(result, indent=2))
    if args.html:
        Path(args.html).write_text(results_html(results_view(result, answers)), encoding="utf-8")
    return 0


def run_export(args: argparse.Namespace) -> int:
    store = ListeningStore()
    try:
        AdminGate().check(args.password, "cli")
    except PermissionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(store.export_csv() if args.format == "csv" else store.export_json())
    return 0


COMMANDS = {"build": run_build, "prompts": run_prompts, "results": run_results, "export": run_export}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
