"""A DataFrame, Series or array as a short Markdown description a model can read (SPEC 16).

``str(df)`` is pandas' print for a terminal: no dtypes, no null counts, and ``...`` where
the columns a question is about may be. ``describe`` gives the shape, every column with
its dtype and null count, and as many of the first rows as the budget leaves room for,
then says what it left out. pandas and numpy are never imported here: a value is
recognised by its methods (as ``--map`` recognises a DataFrame), so neither is needed
unless the value already is one.

The budget is in tokens, bounded from above by the UTF-8 length of the text, the bound
``conversation.message_bound`` uses for a whole message: a description that fits its
budget by this count fits it for the model's tokenizer too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

#: Most sample rows shown of a DataFrame or 2-D array; of a Series or 1-D array.
ROWS = 5
VALUES = 10
#: A value in a sample row is cut to this many characters; a column name to ``NAME_CHARS``.
CELL_CHARS = 24
NAME_CHARS = 80
#: Rows shown of a frame before columns are given up for more rows: with all its columns
#: in fewer than this, the rows show as many columns as fit instead.
MIN_ROWS = 2


def text_tokens(text: str) -> int:
    """An upper bound on the tokens of ``text``: its UTF-8 length (as ``message_bound``)."""
    return len(text.encode("utf-8"))


def kind(value: Any) -> str | None:
    """"frame", "series" or "array" for the values ``describe`` knows, else None."""
    if isinstance(value, type):  # the class pandas.DataFrame has the same attributes
        return None
    if all(hasattr(value, name) for name in ("iloc", "isna", "shape")):
        if hasattr(value, "columns") and hasattr(value, "dtypes"):
            return "frame"
        if hasattr(value, "dtype") and len(getattr(value, "shape", ())) == 1:
            return "series"
        return None
    if (hasattr(value, "__array_interface__") and hasattr(value, "dtype")
            and getattr(value, "ndim", 0) >= 1):
        return "array"
    return None


def describe(value: Any, budget: int, name: str = "") -> str | None:
    """``value`` as Markdown within ``budget`` tokens, or None if it is no frame or array.

    The first line (what it is, ``name`` if given, its shape) is always there; the rest
    comes in order of use to a reader (the columns, then sample rows) while it fits,
    and a last line says what was left out.
    """
    called = f" `{name}`" if name else ""
    found = kind(value)
    if found == "frame":
        return _frame(value, budget, called)
    if found == "series":
        return _series(value, budget, called)
    if found == "array":
        return _array(value, budget, called)
    return None


# -- the three kinds --------------------------------------------------------------------
def _frame(df: Any, budget: int, called: str) -> str:
    rows, cols = (int(n) for n in df.shape)
    names = [_name(c) for c in df.columns]
    dtypes = [str(t) for t in df.dtypes.tolist()]
    nulls = [int(n) for n in df.isna().sum().tolist()]
    most, width = min(ROWS, rows), min(cols, budget // 4 + 1)  # a cell costs "| x " at least
    block = df.iloc[:most, :width]
    sample = _Sample(
        corner=_name(getattr(df.index, "name", None) or ""),
        names=names[:width],
        index=[_cell(i) for i in df.index[:most].tolist()],
        cells=[[_cell(v) for v in row] for row in block.itertuples(index=False, name=None)],
        rows=rows, columns=cols, noun="row",
    )
    schema = [[n, t, f"{k:,}"] for n, t, k in zip(names, dtypes, nulls)]
    title = f"pandas DataFrame{called}: {_count(rows, 'row')} × {_count(cols, 'column')}."
    return _Description(title, budget, sample, schema, names).best()


def _series(series: Any, budget: int, called: str) -> str:
    size = int(series.shape[0])
    name = getattr(series, "name", None)
    most = min(VALUES, size)
    sample = _Sample(
        corner=_name(getattr(series.index, "name", None) or ""),
        names=[_name(name) if name is not None else "value"],
        index=[_cell(i) for i in series.index[:most].tolist()],
        cells=[[_cell(v)] for v in series.iloc[:most].tolist()],
        rows=size, columns=1, noun="value",
    )
    if name is not None:
        called += f" (named {_name(name)!r})"
    nulls = int(series.isna().sum())
    title = (f"pandas Series{called}: {_count(size, 'value')}, dtype {series.dtype}, "
             f"{_count(nulls, 'null')}.")
    return _Description(title, budget, sample).best()


def _array(array: Any, budget: int, called: str) -> str:
    shape = tuple(int(n) for n in array.shape)
    size = 1
    for n in shape:
        size *= n
    nulls = _array_nulls(array)
    counted = f", {_count(nulls, 'null')} (NaN, NaT or None)" if nulls else ""
    title = f"numpy array{called}: shape {shape}, dtype {array.dtype}{counted}."
    if len(shape) == 2:
        rows, cols = shape
        most, width = min(ROWS, rows), min(cols, budget // 4 + 1)
        sample = _Sample(corner="", names=[str(j) for j in range(width)],
                         index=[str(i) for i in range(most)],
                         cells=[[_cell(v) for v in row] for row in array[:most, :width].tolist()],
                         rows=rows, columns=cols, noun="row")
    else:  # a vector, or the first values of a higher array in its memory order
        most = min(VALUES, size)
        sample = _Sample(corner="position" if len(shape) == 1 else "flat position (C order)",
                         names=["value"], index=[str(i) for i in range(most)],
                         cells=[[_cell(v)] for v in array.flat[:most].tolist()],
                         rows=size, columns=1, noun="value")
    return _Description(title, budget, sample).best()


def _array_nulls(array: Any) -> int:
    """NaN, NaT and None in an array (the dtypes that can hold them); 0 if not countable."""
    kind = getattr(array.dtype, "kind", "")
    try:
        if kind in "fcmM":
            return int((array != array).sum())  # NaN and NaT are the values unequal to self
        if kind == "O":
            return sum(1 for v in array.flat if v is None or v != v)
    except (TypeError, ValueError):  # an object whose != is not a bool
        return 0
    return 0


# -- Markdown within a budget -----------------------------------------------------------
@dataclass(frozen=True)
class _Sample:
    """The first rows of a value as table cells (only as many columns as could fit)."""

    corner: str  # the index column's header
    names: list[str]
    index: list[str]
    cells: list[list[str]]
    rows: int  # of the whole value
    columns: int
    noun: str  # what a row is called: "row" or "value"


@dataclass(frozen=True)
class _Description:
    """The parts of a description, and the largest choice of them that fits the budget.

    Each candidate is measured as the whole text it would be, notes included, so what
    ``best`` returns fits by construction (save the first line, which always goes).
    """

    title: str
    budget: int
    sample: _Sample
    schema: list[list[str]] | None = None  # a frame's column, dtype, nulls
    names: list[str] | None = None  # all of a frame's column names

    def best(self) -> str:
        columns = len(self.schema) if self.schema is not None else 0
        listed = _most(lambda n: self._fits(n, 0, 0), columns)
        rows, width = self._sample_size(listed, complete=listed == columns)
        return self.text(listed, rows, width)

    def _fits(self, listed: int, rows: int, width: int) -> bool:
        return text_tokens(self.text(listed, rows, width)) <= self.budget

    def _sample_size(self, listed: int, *, complete: bool) -> tuple[int, int]:
        """All columns in ``ROWS`` down to ``MIN_ROWS`` rows if they fit; else the most
        rows with as many leading columns as fit."""
        most, every = len(self.sample.cells), len(self.sample.names)
        if complete and every == self.sample.columns:
            for rows in range(most, min(MIN_ROWS, most) - 1, -1):
                if rows and self._fits(listed, rows, every):
                    return rows, every
        for rows in range(most, 0, -1):
            width = _most(partial(self._fits, listed, rows), every)
            if width:
                return rows, width
        return 0, 0

    def text(self, listed: int, rows: int, width: int) -> str:
        parts = [self.title]
        if listed and self.schema is not None:
            parts.append(_table(["column", "dtype", "nulls"], self.schema[:listed]))
        s = self.sample
        if rows and width:
            lead = f"The first {_count(rows, s.noun)}" if rows < s.rows else f"All {rows:,}"
            if rows == s.rows and s.rows != 1:
                lead += f" {s.noun}s"
            elif rows == s.rows:
                lead += f" {s.noun}"
            if width < s.columns:
                lead += f", columns {_span(s.names, 0, width)}"
            parts.append(lead + ":")
            parts.append(_table([s.corner, *s.names[:width]],
                                [[s.index[i], *s.cells[i][:width]] for i in range(rows)]))
        parts += self._left(listed, rows, width)
        return "\n\n".join(parts)

    def _left(self, listed: int, rows: int, width: int) -> list[str]:
        """The closing line: what of the value the text leaves out."""
        s, left = self.sample, []
        if self.schema is not None and self.names is not None and listed < len(self.schema):
            left.append(f"{_count(len(self.schema) - listed, 'column')} not listed "
                        f"({_span(self.names, listed, len(self.names))})")
        if rows < s.rows:
            left.append(_count(s.rows - rows, s.noun))
        if rows and width < s.columns:
            left.append(f"{_count(s.columns - width, 'column')} from the {s.noun}s shown")
        return ["Left out: " + "; ".join(left) + "."] if left else []


def _most(fits: Callable[[int], bool], high: int) -> int:
    """The largest n in 0..high with ``fits(n)`` (0 if none), for a size that grows with n."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(headers), "|" + "---|" * len(headers), *(_row(r) for r in rows)]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name(label: Any) -> str:
    """A column or index label as a table cell."""
    return _cut(str(label), NAME_CHARS)


def _cell(value: Any) -> str:
    """A sample value as a table cell: floats to 6 significant digits, text cut short."""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        try:
            text = format(float(value), ".6g")
        except (TypeError, ValueError):
            return _cut(str(value), CELL_CHARS)
        return text + ".0" if text.lstrip("-").isdigit() else text  # 1.0 reads as a float
    return _cut(str(value), CELL_CHARS)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _span(names: Sequence[str], start: int, stop: int) -> str:
    """Columns ``start`` to ``stop`` by name: "a to f", or "a" for one."""
    first, last = names[start], names[stop - 1]
    return first if stop - start == 1 else f"{first} to {last}"
