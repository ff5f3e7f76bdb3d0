"""``%chat batch status|wait|fetch [ID] [--poll S]``: follow a batch task or deferred job.

``%%chat --map DATA --batch`` prints its task's id when it starts, ``--deferred`` its
job's id (``def-…``); either runs on the service, so a new kernel picks it up with that
id alone: ``status`` asks once (without an id: the folder's newest tasks and this
cache's deferred jobs), ``wait`` follows it to the end with a progress bar, ``fetch``
waits and returns the replies in row order (a failed row holds its error), e.g.
``df["label"] = %chat batch fetch ID``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...display.reply import Table
from ...ipython.commands import Context, Parser


def parser() -> Parser:
    parser = Parser("batch")
    parser.add_argument("action", choices=("status", "wait", "fetch"))
    parser.add_argument("task_id", nargs="?", metavar="ID", help="the batch task's id")
    parser.add_argument("--poll", type=float, default=None, metavar="S",
                        help="seconds between status checks")
    return parser


def _row(task: Any) -> tuple[str, str, str, str]:
    progress = f"{task.completed}/{task.total}" if task.total else ""
    return task.task_id, task.status, progress, str(task.failed) if task.failed else ""


def _job_row(job: Any) -> tuple[str, str, str, str]:
    return job.job, job.status, f"{job.done}/{job.rows} rows", str(job.failed or "")


def run(ctx: Context, args: argparse.Namespace) -> Any:
    from ...core.errors import UsageProblem
    from .. import deferred
    from ..batch_jobs import pick_up, recent

    if args.poll is not None and args.poll <= 0:
        raise UsageProblem("%chat batch: --poll must be a positive number of seconds.")
    headers = ("task", "status", "batches", "failed rows")
    if args.task_id is None:
        if args.action != "status":
            raise UsageProblem(f"%chat batch {args.action} needs the task's ID.")
        rows = [_job_row(j) for j in deferred.recent(ctx.session)]
        rows += [_row(t) for t in recent(ctx.session)]
        return Table(headers, rows, "Batch tasks and deferred jobs")
    if args.task_id.startswith(deferred.JOB_PREFIX):
        job = deferred.pick_up(ctx.session, args.task_id, wait=args.action != "status",
                               fetch=args.action == "fetch", poll=args.poll)
        if args.action == "fetch":
            print(job.summary())
            return job.results
        return Table(headers, [_job_row(job)], f"Deferred job {job.job}")
    task = pick_up(ctx.session, args.task_id, wait=args.action != "status",
                   fetch=args.action == "fetch", poll=args.poll)
    if args.action == "fetch":
        print(task.summary())
        return task.results
    return Table(headers, [_row(task)], f"Batch task {task.task_id}")
