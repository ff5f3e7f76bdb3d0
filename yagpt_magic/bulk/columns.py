"""A job's values as DataFrame columns: never over the user's own columns, in one step.

``--map`` puts one value per row in a column (``-o NAME``, default ``reply``); when
each value is a dict (``--schema``, ``--json``, ``parse=``) its fields become columns.
Replies come from a model and may say anything, so:

- a field never replaces an *input* column: one named like an input column is stored
  as ``{column}_{field}`` (``reply_text`` beside the user's ``text``); if that name is
  taken too, the rows holding the field get an ``InvalidReply`` in its place. Columns a
  previous ``--map`` wrote (listed in the frame's ``attrs``) are ours and are replaced
  on a re-run, so running a cell again does not grow ``reply_reply_label``;
- a reply with more than :data:`MAX_FIELDS` fields is an ``InvalidReply`` in its row,
  and the job adds at most that many columns in all (a reply of 20,000 keys once took
  minutes, spread one column at a time);
- the columns are built in one ``pandas.concat`` (no ``DataFrame.assign(**fields)``,
  which a field named ``self`` breaks), and any name a field has is fine as a column;
- nothing here raises for one row's sake: a row's trouble is its own value.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..core.errors import InvalidReply, UsageProblem

#: Most fields one reply may spread into columns, and most columns a job adds in all.
MAX_FIELDS = 100
#: Where a frame remembers the columns ``--map`` wrote (``DataFrame.attrs``).
OURS = "yagpt_magic_columns"


def is_frame(data: Any) -> bool:
    """A pandas DataFrame, recognised by its methods (pandas is not a dependency)."""
    return hasattr(data, "columns") and hasattr(data, "index") and hasattr(data, "attrs")


def ours(data: Any) -> set[str]:
    """The columns an earlier ``--map`` wrote into this frame."""
    try:
        found = data.attrs.get(OURS, ())
        return {str(name) for name in found}
    except (AttributeError, TypeError):
        return set()


def inputs(data: Any) -> set[str]:
    """The user's own columns: everything but what ``--map`` wrote earlier."""
    return {str(c) for c in data.columns} - ours(data)


def check_output(data: Any, column: str) -> None:
    """``-o NAME`` that names one of the user's columns is refused before sending."""
    if is_frame(data) and column in inputs(data):
        raise UsageProblem(
            f"-o {column}: the data already has a column {column!r} of its own; the replies "
            "would replace it. Pick another name; nothing was sent."
        )


def _names(results: list[Any], taken: set[str], prefix: str) -> dict[str, str]:
    """Each field's column; a field that is an error in its row is marked there.

    Rows with too many fields, or fields that would pass the job's column budget or
    cannot be named without replacing an input column, become ``InvalidReply`` in
    ``results`` (changed in place).
    """
    names: dict[str, str] = {}
    used = set(taken)
    for index, value in enumerate(results):
        if not isinstance(value, dict):
            continue
        if len(value) > MAX_FIELDS:
            results[index] = InvalidReply(
                f"Row {index}: the reply has {len(value):,} fields; at most {MAX_FIELDS} "
                "become columns.")
            continue
        fresh = [k for k in value if k not in names]
        if len(names) + len(fresh) > MAX_FIELDS:
            results[index] = InvalidReply(
                f"Row {index}: its fields would make the job's columns more than {MAX_FIELDS}.")
            continue
        for field in fresh:
            name = field if isinstance(field, str) else repr(field)
            if name in used:
                name = f"{prefix}_{name}"
            if name in used:
                results[index] = InvalidReply(
                    f"Row {index}: its field {field!r} is named like an input column, and so "
                    f"is {name!r}; not stored.")
                break
            names[field] = name
            used.add(name)
    return names


def frame_columns(data: Any, column: str, results: Sequence[Any]) -> dict[str, list[Any]]:
    """The new columns, by name: one (``column``), or one per dict field."""
    values = list(results)
    if not any(isinstance(v, dict) for v in values):
        return {column: values}
    names = _names(values, inputs(data), column)
    if not names:  # no field could be stored: the rows' errors still need a place
        return {column: values}
    return {
        name: [v.get(field) if isinstance(v, dict) else v for v in values]
        for field, name in names.items()
    }


def with_columns(data: Any, columns: dict[str, list[Any]]) -> Any:
    """A copy of ``data`` with ``columns`` added (or replacing ours), in one concat."""
    pd: Any = importlib.import_module("pandas")  # a DataFrame came in: pandas is there

    added = pd.DataFrame(columns, index=data.index)
    kept = data.drop(columns=[c for c in data.columns if str(c) in columns])
    out = pd.concat([kept, added], axis=1)
    out.attrs = {**data.attrs, OURS: sorted(ours(data) | set(columns))}
    return out


def shaped(data: Any, column: str, results: Sequence[Any]) -> Any:
    """A list as is; for a DataFrame, a copy with the new column (or one per dict field)."""
    if not is_frame(data):
        return list(results)
    return with_columns(data, frame_columns(data, column, results))
