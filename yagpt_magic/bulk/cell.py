"""``%%chat --map DATA`` (``--batch``, ``--deferred``, ``--estimate``): a cell as a bulk job.

The magic parses the cell and hands the rest here (the package root gives it this
function): it cannot import this layer, which sits below it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..core.errors import Interrupted, UsageProblem
from ..core.structured import from_flags
from .mapping import store

if TYPE_CHECKING:
    from ..core.session import ChatSession


def run_map_cell(session: ChatSession, ns: dict[str, Any], args: argparse.Namespace,
                 cell: str) -> Any:
    """Run the cell's template over the rows of ``ns[args.map]``; store or return the result."""
    if args.map is None:
        raise UsageProblem("--batch, --deferred, --estimate, --concurrency and --fresh go "
                           "with --map DATA.")
    if args.batch and args.deferred:
        raise UsageProblem("--batch and --deferred are two ways to run the rows; pick one. "
                           "Nothing was sent.")
    if args.vars:
        raise UsageProblem("--vars does not go with --map: there {name} is a column.")
    if args.cells is not None:
        raise UsageProblem("--cells does not go with --map: each row is sent on its own.")
    if args.tools:
        raise UsageProblem("--tools does not go with --map: each row is one request, "
                           "answered without function calls.")
    if args.image:
        raise UsageProblem("--image does not go with --map: each row is one request "
                           "of text.")
    if args.map not in ns:
        raise UsageProblem(f"--map: {args.map!r} is not defined; nothing was sent.")
    schema = from_flags(args.schema, args.json, ns)
    if args.system is not None:
        session.set_system(args.thread, args.system)
    # The thread's system prompt applies (not its history); no thread is created.
    known = session.threads.get(args.thread)
    system = known.system_prompt if known is not None else None
    options = session.options(
        model=args.model, temperature=args.temperature, max_tokens=args.max_tokens,
        stream=False, response_format=schema.response_format if schema else None)
    # With --schema each row's reply is checked; its fields become columns.
    parse = (lambda text: schema.parse(text).data) if schema is not None else None
    column = args.output or "reply"
    data = ns[args.map]
    if args.estimate:
        from .estimate import estimate

        mode = "--batch" if args.batch else "--deferred" if args.deferred else "--map"
        found = estimate(session, cell, data, mode=mode, column=column, system=system,
                         options=options, concurrency=args.concurrency, fresh=args.fresh)
        print("\n".join(found.lines()))
        return None
    if args.batch:
        from .batch_jobs import run_batch

        results, summary = run_batch(session, cell, data, column=column, system=system,
                                     options=options, parse=parse)
    else:
        from .deferred import run_deferred
        from .mapping import run_map

        try:
            if args.deferred:
                results, outcome, _ = run_deferred(
                    session, cell, data, column=column, system=system, options=options,
                    parse=parse, fresh=args.fresh)
            else:
                results, outcome = run_map(
                    session, cell, data, column=column, system=system,
                    concurrency=args.concurrency, options=options, parse=parse,
                    fresh=args.fresh)
        except Interrupted as stopped:  # what was answered is there to look at
            partial = getattr(stopped, "values", None)
            if partial is not None:
                store(ns, args.map, args.output, partial, column)
            raise
        summary = outcome.summary()
    print(summary)
    return store(ns, args.map, args.output, results, column)
