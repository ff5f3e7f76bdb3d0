"""Figure 5: saving and loading a 1,000-turn thread as ``.ipynb``.

The baseline is what the emulator takes to answer those turns: each turn's exact
fitted messages sent again through the SDK's ``run()``, one after another, and the
wall times summed. The thread is figure 3's synthetic history (fitted into a 32k
window, usage as the emulator counts it), so loading checks real SHA-256s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from yagpt_magic.core.conversation import sent_messages
from yagpt_magic.transcript import load_threads, save_thread

from .common import Row, emulator_process, fmt_time, median, sdk_model
from .history import synthetic_thread


def run(quick: bool) -> Row:
    turns = 20 if quick else 1_000
    reps = 2 if quick else 7
    thread = synthetic_thread("transcript", turns)
    with emulator_process() as emu:
        model = sdk_model(emu.address)
        model.run(sent_messages(thread, 0))  # warm the channel
        answering = 0.0
        for index in range(turns):
            messages = sent_messages(thread, index)
            start = time.perf_counter()
            model.run(messages)
            answering += time.perf_counter() - start
    saves: list[float] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "thread.ipynb"
        for rep in range(reps + 1):  # the first round is a warm-up (imports, schema)
            start = time.perf_counter()
            save_thread(thread, path)
            saved = time.perf_counter() - start
            start = time.perf_counter()
            loaded = load_threads(path)
            if rep:
                saves.append(saved)
                loads.append(time.perf_counter() - start)
        size = path.stat().st_size
    same = loaded["transcript"].turns == thread.turns
    save, load = median(saves), median(loads)
    return Row(
        figure=f"5. transcript .ipynb, {turns:,} turns (slower of save/load)",
        baseline=answering,
        ours=max(save, load),
        unit="s",
        target="each <= 0.10",
        passed=max(save, load) <= 0.10 * answering and same,
        details=[
            f"emulator answering the {turns} turns through the SDK: {fmt_time(answering)}",
            f"save {fmt_time(save)} ({save / answering:.3f}), load {fmt_time(load)} "
            f"({load / answering:.3f}), median of {reps}; file {size / 1e6:.1f} MB; "
            f"loaded thread equal to the saved one: {'yes' if same else 'NO'}",
        ],
    )
