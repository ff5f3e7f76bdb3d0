"""What a turn may hold: only values that every transcript format keeps exactly.

A turn is stored as JSON (a reply output's metadata in the notebook, ``.json``,
``.jsonl``, the comments of ``.md``) in UTF-8. A model can produce values that have no
such form, or one that nothing reads back: NaN and Infinity (not JSON: a notebook
holding them no longer opens), an unpaired surrogate (no UTF-8 form), an integer of
more than 4,300 digits (Python refuses to read it back) and nesting deeper than the
readers recurse (nbformat and ``json`` spend stack frames per level; a value 900 deep
made saving a notebook fail). Such a value is refused before the turn is committed,
in one line, and a transcript holding one is refused when it is loaded, so every turn
in a thread can be saved, recorded, replayed and restored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .conversation import Turn

#: Deepest nesting kept: far beyond real data, well within what nbformat writes and reads.
MAX_DEPTH = 100
#: Python reads back at most this many digits of an integer (``sys.get_int_max_str_digits``).
MAX_DIGITS = 4300
_TOO_LONG = 10**MAX_DIGITS


def problem(value: Any) -> str | None:
    """What in ``value`` no transcript can hold, as a phrase for a message; None if nothing.

    Walks the value without recursion, so a value nested 100,000 deep is measured, not
    a ``RecursionError``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                return f"it is nested more than {MAX_DEPTH} levels deep"
            if isinstance(item, dict):
                stack += [(key, depth) for key in item]
                stack += [(child, depth + 1) for child in item.values()]
            else:
                stack += [(child, depth + 1) for child in item]
        elif isinstance(item, str):
            found = _surrogate(item)
            if found:
                return found
        elif isinstance(item, float) and not math.isfinite(item):
            name = "NaN" if math.isnan(item) else "Infinity"
            return f"it holds {name}, which JSON (and so a notebook) cannot store"
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _TOO_LONG:
            return f"it holds an integer of more than {MAX_DIGITS:,} digits, which Python " \
                   "does not read back"
    return None


def _surrogate(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return (f"it holds an unpaired surrogate ({text[err.start]!r} at character "
                f"{err.start}), which UTF-8 cannot store")
    return None


def parts(turn: Turn) -> Iterator[tuple[str, Any]]:
    """What of a turn came from the model or a tool, named for a message."""
    yield "the reply", turn.reply
    yield "the reply's value", turn.value
    for tool_round in turn.tool_rounds:
        for call in tool_round.calls:
            yield f"the arguments of its call of {call.name!r}"[:80], call.arguments
            yield f"the result of its call of {call.name!r}"[:80], call.result


def turn_problem(turn: Turn) -> str | None:
    """The first part of ``turn`` that no transcript can hold, and why; None if none."""
    for name, value in parts(turn):
        found = problem(value)
        if found:
            return f"{name}: {found}"
    return None
