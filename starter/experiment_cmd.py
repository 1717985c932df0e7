"""`atelier experiment <rows.jsonl|.csv>`: a pipeline's job over a dataset's rows under named variants
(`--variant b:models.image=offline-vivid,threshold=90`), followed to its report: each variant's mean score with its
95 % interval, pass rate, cost, tokens and time, the difference to the baseline, the regressions. And the matrix
every create takes (`atelier image "…" --vary models.image=offline,offline-vivid --vary threshold=80,90 --repeat 2`):
an experiment of the create's one job under every combination. Bad input is one line and exit 2, before anything
starts (the cells are checked as the API checks them: `starter.experiment_plan`)."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHandle

from kit.datasets import BadDataset, read_rows
from kit.storage import load, make_store
from models.api import RunOptions
from models.experiment import (
    EXPERIMENT_PIPELINE,
    SCORED_BY,
    ExperimentRequest,
    ExperimentResult,
    ExperimentStatus,
    set_path,
)
from models.experiment_report import ExperimentReport
from models.meme import SCENE_OPTIONS
from models.pipelines import PIPELINES
from models.priority import PRIORITY_KEYS
from models.settings import Settings
from models.validation import field_problems
from models.workflow_interfaces import ExperimentWorkflow
from models.world import picture_options
from starter import image_cmd, meme_cmd, world_cmd
from starter.common import Pipeline, UsageError, bounded_query, catalog_or_explain, stderr
from starter.experiment_plan import PlanProblem, cost_path, plan
from starter.follow import follow
from starter.launch import launch
from starter.max_cost import BadBudget, cost_limit_for

SETTING = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_.]*=)")  # splits `a=1,b=x,y` before each `path=`
PRICED = {  # what a cell's budget is quoted for, as each pipeline's create quotes it: pictures, references, first calls
    "image": lambda cell: ([cell.options], len(cell.references), ("image", "text")),
    "world": lambda cell: (picture_options(cell.images), 0, ("text",)),
    "meme": lambda cell: ([SCENE_OPTIONS], 0, ("text",)),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("experiment", help="run a job over a dataset's rows under variants; print the report")
    cmd.add_argument("dataset", type=Path, help="the rows: JSONL, or CSV with a header of field paths")
    cmd.add_argument("--pipeline", choices=sorted(SCORED_BY), default="image")
    cmd.add_argument("--variant", action="append", default=[], metavar="NAME[:PATH=VALUE,…]", help="one per variant")
    cmd.add_argument("--base", action="append", default=[], metavar="PATH=VALUE", help="a field every cell starts with")
    cmd.add_argument("--baseline", default=None, help="the variant the others are compared with (default: the first)")
    cmd.add_argument("--repeat", type=int, default=1, help="runs of each row under each variant")
    cmd.add_argument("--max-parallel", type=int, default=8, help="cells running at once")
    cmd.add_argument("--max-cost", type=float, default=None, metavar="USD", help="the whole experiment's budget")
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    cmd.add_argument("--id", dest="workflow_id", default=None, help="experiment id (attach if it exists)")
    cmd.add_argument("--detach", action="store_true", help="start it and print its id")


def add_matrix_flags(parser: argparse.ArgumentParser) -> None:
    """`--vary` and `--repeat` on a create's command."""
    parser.add_argument(
        "--vary", action="append", default=[], metavar="PATH=V1,V2", help="a matrix: run every combination"
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --vary: runs of each combination")


def value_of(text: str) -> Any:
    """A typed value: JSON when it reads as JSON (numbers, true, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _setting(text: str, flag: str) -> tuple[str, str]:
    path, equals, value = text.partition("=")
    if not equals or not path.strip():
        raise UsageError(f"{flag} {text!r}: expected PATH=VALUE")
    return path.strip(), value


def variants_of(specs: list[str]) -> list[dict[str, Any]]:
    """`--variant NAME[:PATH=VALUE[,PATH=VALUE]]` (a name alone: the base as it is), a name given again adding
    to its settings."""
    variants: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, _, settings = spec.partition(":")
        if not name.strip() or "=" in name:
            raise UsageError(f"--variant {spec!r}: expected NAME[:PATH=VALUE[,PATH=VALUE]]")
        chosen = variants.setdefault(name.strip(), {})
        for setting in SETTING.split(settings) if settings else []:
            path, value = _setting(setting, "--variant")
            chosen[path] = value_of(value)
    return [{"name": name, "set": chosen} for name, chosen in variants.items()]


def matrix_of(specs: list[str]) -> list[dict[str, Any]]:
    """`--vary PATH=V1,V2` (each once): a variant per combination, named `path=value,…`."""
    axes = []
    for spec in specs:
        path, values = _setting(spec, "--vary")
        axes.append([(path, raw, value_of(raw)) for raw in values.split(",")])
    return [
        {"name": ",".join(f"{path}={raw}" for path, raw, _ in combination), "set": {p: v for p, _, v in combination}}
        for combination in itertools.product(*axes)
    ]


def pricing(settings: Settings, pipeline: str) -> Any:
    """A cell's request → its job, priced as the pipeline's create prices it (and a meme's blocked words)."""
    spec = PIPELINES[pipeline]

    async def price(cell: Any) -> dict[str, Any]:
        images, references, first = PRICED[pipeline](cell)
        try:
            cost = cost_limit_for(cell.max_cost_usd, settings, images, references, first, cell.models)
        except BadBudget as exc:
            raise PlanProblem("max_cost_usd", str(exc)) from exc
        job = cell.model_dump(mode="json", exclude=set(RunOptions.model_fields))
        set_path(job, cost_path(spec), cost.model_dump(mode="json") if cost else None)
        if "blocked_words" in job:
            job["blocked_words"] = sorted({*job["blocked_words"], *settings.blocked_words})
        return job

    return price


async def start(args: Any, settings: Settings, request: ExperimentRequest, flags: Flags) -> int:
    """Plan it (a bad cell: one line naming where it came from), start it, follow it, print its report."""
    try:
        experiment = await plan(
            request,
            request.dataset.rows or [],
            settings,
            catalog_or_explain(settings),
            pricing(settings, request.pipeline),
            PRIORITY_KEYS[EXPERIMENT_PIPELINE],
        )
    except PlanProblem as exc:
        raise UsageError(f"{flags.of(exc.field, request)}: {exc.message}") from exc
    text = f"{experiment.pipeline} · {len(experiment.rows)} rows × {len(experiment.variants)} variants"
    launched = await launch(args, settings, EXPERIMENT_PIPELINE, ExperimentWorkflow.run, experiment, text)
    if launched is None:
        return 0
    client, workflow_id = launched
    return await print_report(client, workflow_id, settings, None, as_json=getattr(args, "json", False))


class Flags:
    """Where a problem's field came from on the command line: a variant (`--variant b: threshold`, or a
    matrix's `--vary threshold`), a row of the file (`rows.jsonl row 4: prompt`), `--base`, `--max-cost`."""

    def __init__(self, dataset: str = "", matrix: bool = False) -> None:
        self.dataset, self.matrix = dataset, matrix

    def of(self, field: str, request: ExperimentRequest) -> str:
        if match := re.match(r"variants\[(\d+)\]\.set\.(.+)", field):
            name, path = request.variants[int(match[1])].name, match[2]
            return f"--vary {path}" if self.matrix else f"--variant {name}: {path}"
        if match := re.match(r"dataset\.rows\[(\d+)\]\.?(.*)", field):
            return f"{self.dataset} row {int(match[1]) + 1}: {match[2]}" if self.dataset else match[2]
        if field.startswith("base."):
            return field.removeprefix("base.") if self.matrix else f"--base {field.removeprefix('base.')}"
        return "--max-cost" if field == "max_cost_usd" else field


def request_of(values: dict[str, Any]) -> ExperimentRequest:
    try:
        return ExperimentRequest.model_validate(values)
    except ValidationError as exc:
        first = field_problems(exc, ExperimentRequest)[0]
        raise UsageError(f"{first['field'] or 'experiment'}: {first['message']}") from exc


async def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        rows = read_rows(args.dataset.read_bytes(), args.dataset.name)
    except OSError as exc:
        raise UsageError(f"{args.dataset}: {exc.strerror or exc}") from exc
    except BadDataset as exc:
        raise UsageError(f"{args.dataset}: {exc}") from exc
    if not args.variant:
        raise UsageError("--variant: give at least one (NAME:PATH=VALUE)")
    base = dict(_setting(setting, "--base") for setting in args.base)
    request = request_of(
        {
            "pipeline": args.pipeline,
            "dataset": {"rows": rows},
            "base": {path: value_of(value) for path, value in base.items()},
            "variants": variants_of(args.variant),
            "baseline": args.baseline,
            "repeat": args.repeat,
            "max_parallel": args.max_parallel,
            "max_cost_usd": args.max_cost,
        }
    )
    return await start(args, settings, request, Flags(dataset=args.dataset.name))


async def run_matrix(name: str, args: argparse.Namespace, settings: Settings) -> int:
    """`atelier <pipeline> … --vary PATH=V1,V2`: the create's job, checked by its own command, under every
    combination; `--max-cost` is each cell's budget."""
    spec = PIPELINES[name]
    job = await _created_job(name, args, settings)
    base = job.model_dump(mode="json", exclude_none=True)
    set_path(base, cost_path(spec), None)
    text = base.pop(spec.text_field)
    if args.max_cost is not None:
        base["max_cost_usd"] = args.max_cost
    request = request_of(
        {
            "pipeline": name,
            "dataset": {"rows": [{spec.text_field: text}]},
            "base": base,
            "variants": matrix_of(args.vary),
            "repeat": args.repeat,
        }
    )
    return await start(args, settings, request, Flags(matrix=True))


async def _created_job(name: str, args: argparse.Namespace, settings: Settings) -> BaseModel:
    if name == "image":
        job, uploads = image_cmd.image_job(args, settings)
        await image_cmd.upload(make_store(settings), uploads)
        return job
    return {"world": world_cmd.world_job, "meme": meme_cmd.meme_job}[name](args, settings)


# --- following and printing ------------------------------------------------------------------------------


async def grid(handle: WorkflowHandle) -> ExperimentStatus | None:
    return await bounded_query(handle, ExperimentWorkflow.status, ExperimentStatus | None)


async def progress_line(handle: WorkflowHandle) -> str | None:
    status = await grid(handle)
    if status is None:
        return None
    counts = status.counts
    done = counts["completed"] + counts["failed"] + counts["refused"] + counts["cancelled"]
    budget = f" of ${status.max_cost_usd:.2f}" if status.max_cost_usd is not None else ""
    return (
        f"{status.state} · {done}/{status.cells} cells · {counts['running']} running · {counts['failed']} failed · "
        f"{counts['refused']} refused · ${status.spent_usd:.4f}{budget}"
    )


def _interval(estimate: Any, signed: bool = False) -> str:
    if estimate.mean is None:
        return "-"
    mean = f"{estimate.mean:+.1f}" if signed else f"{estimate.mean:.1f}"
    if estimate.low is None:
        return f"{mean} (n={estimate.count})"
    return f"{mean} [{estimate.low:.1f}, {estimate.high:.1f}]"


def report_text(report: ExperimentReport) -> str:
    """The report for people: one line per variant, the differences to the baseline, the regressions."""
    names = [v.name + (" (baseline)" if v.name == report.baseline else "") for v in report.variants]
    width = min(max(map(len, names), default=7), 70) + 2
    lines = [f"{'variant':<{width}}{'done':>5}{'failed':>7}{'refused':>8}  {'mean score [95% CI]':<22}"
             f"{'pass':>6}{'cost':>10}{'tokens':>9}{'p50 s':>8}{'p95 s':>8}"]  # fmt: skip
    for name, v in zip(names, report.variants, strict=True):
        rate = f"{v.pass_rate:.0%}" if v.pass_rate is not None else "-"
        p50 = f"{v.seconds_p50:.2f}" if v.seconds_p50 is not None else "-"
        p95 = f"{v.seconds_p95:.2f}" if v.seconds_p95 is not None else "-"
        counts = f"{v.completed:>5}{v.failed:>7}{v.refused:>8}"
        lines.append(f"{name[: width - 2]:<{width}}{counts}  {_interval(v.score):<22}"
                     f"{rate:>6}{'$' + format(v.cost_usd, '.4f'):>10}{v.tokens:>9}{p50:>8}{p95:>8}")  # fmt: skip
    for c in report.comparisons:
        flag = "  REGRESSION" if c.regression else ""
        lines.append(f"{c.variant} vs {c.baseline}: {_interval(c.difference, signed=True)} (paired by row){flag}")
    if report.regressions:
        lines.append(f"regressions ({len(report.regressions)} rows whose interval is below 0):")
        lines += [f"  {r.variant} · {r.label[:60]}: {_interval(r.difference, signed=True)}" for r in report.regressions]
    lines.append(f"method: {report.method}")
    return "\n".join(lines)


async def print_report(client: Client, workflow_id: str, settings: Settings, out: Path | None, as_json: bool = False):
    handle = client.get_workflow_handle_for(ExperimentWorkflow.run, workflow_id)
    result: ExperimentResult = await follow(client, handle, progress_line)
    if result.report is None:
        raise UsageError(f"experiment {workflow_id} has no report")
    report = ExperimentReport.model_validate_json(await load(make_store(settings), result.report.report))
    print(report.model_dump_json(indent=2) if as_json else report_text(report))
    where = settings.artifact_dir if settings.storage == "local" else f"bucket {settings.s3_bucket}"
    stderr.print(f"report: {result.report.report.key} (cells: {result.report.csv.key}, .jsonl) in {where}")
    return 0


async def _status_json(handle: WorkflowHandle) -> dict | None:
    status = await grid(handle)
    return status.model_dump(mode="json", exclude={"outcomes", "labels"}) if status else None


PIPELINE = Pipeline(state=_status_json, result=print_report)
