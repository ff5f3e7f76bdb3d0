"""The progress bar of ``%%chat --map`` and ``--batch``: tqdm's, notebook or terminal.

``tqdm.auto`` draws the notebook's own widget bar in Jupyter and plain text in a
terminal, with rate and ETA built in; we add tokens, errors and quota rejections.
"""

from __future__ import annotations

import time
from typing import Any

#: Seconds between postfix refreshes: tqdm redraws on every call otherwise.
_EVERY = 0.2


class Bar:
    """Rows done of all rows; the postfix shows tokens, errors and rejections."""

    def __init__(self, description: str = "rows") -> None:
        self.description = description
        self._bar: Any = None
        self._shown = 0.0

    def start(self, outcome: Any) -> None:
        from tqdm.auto import tqdm

        done = outcome.cached
        self._bar = tqdm(total=outcome.rows, initial=done, unit="row", desc=self.description,
                         dynamic_ncols=True)

    def update(self, outcome: Any, kind: str) -> None:
        bar = self._bar
        if bar is None:
            return
        if kind == "row":
            bar.update(1)
        now = time.monotonic()
        if now - self._shown >= _EVERY:
            self._shown = now
            bar.set_postfix(tokens=outcome.tokens, errors=outcome.failed,
                            rejected=outcome.rejected, refresh=False)

    def set(self, done: int, total: int, status: str) -> None:
        """For a batch task: absolute progress, as the service reports it."""
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total or None, unit="batch", desc=self.description)
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(status, refresh=False)
        self._bar.refresh()

    def close(self, outcome: Any = None) -> None:
        if self._bar is not None:
            if outcome is not None:
                self._bar.set_postfix(tokens=outcome.tokens, errors=outcome.failed,
                                      rejected=outcome.rejected, refresh=False)
            self._bar.close()
            self._bar = None
