"""Figure 2: ``%load_ext yagpt_magic`` against ``import yandex_cloud_ml_sdk``, in fresh processes.

The headline runs each statement in a freshly started ipykernel (what a Jupyter user
has when they type the line) and times only the statement, inside the kernel:
kernel start-up is the same for both. A detail line repeats it in a bare
``InteractiveShell`` in a fresh interpreter, where nothing (not even asyncio) is
imported yet, which is the harsher case.
"""

from __future__ import annotations

import subprocess
import sys

from .common import Kernel, Row, fmt_time, median

_TIMED = (
    "import sys, time\n"
    "_bench_start = time.perf_counter()\n"
    "{statement}\n"
    "_bench_took = time.perf_counter() - _bench_start\n"
)
LOAD_EXT = "get_ipython().run_line_magic('load_ext', 'yagpt_magic')"
IMPORT_SDK = "import yandex_cloud_ml_sdk"
#: What SPEC 1 promises of loading: neither the SDK nor gRPC is imported.
_LAZY = "'grpc' not in sys.modules and 'yandex_cloud_ml_sdk' not in sys.modules"

_BARE = (
    "import time, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "from traitlets.config import Config\n"
    "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
    "shell = InteractiveShell.instance(config=c)\n"
    "start = time.perf_counter()\n"
    "{statement}\n"
    "print(time.perf_counter() - start)\n"
)


def in_fresh_kernel(statement: str) -> tuple[float, bool]:
    """Seconds the statement took in a newly started kernel, and whether it stayed lazy."""
    with Kernel() as kernel:
        done = kernel.execute(
            _TIMED.format(statement=statement),
            expressions={"took": "_bench_took", "lazy": _LAZY},
        )
        return done.expression("took"), done.expression("lazy")


def in_fresh_shell(statement: str) -> float:
    """Seconds the statement took in a new interpreter with a bare InteractiveShell."""
    code = _BARE.format(statement=statement.replace("get_ipython()", "shell"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def _alternate(reps: int, measure: object) -> tuple[list[float], list[float]]:
    base: list[float] = []
    ours: list[float] = []
    for i in range(reps):
        pair = [(base, IMPORT_SDK), (ours, LOAD_EXT)]
        for store, statement in pair if i % 2 == 0 else pair[::-1]:
            store.append(measure(statement))  # type: ignore[operator]
    return base, ours


def run(quick: bool) -> Row:
    reps = 1 if quick else 10
    lazy: list[bool] = []

    def kernel_time(statement: str) -> float:
        took, stayed_lazy = in_fresh_kernel(statement)
        if statement == LOAD_EXT:
            lazy.append(stayed_lazy)
        return took

    in_fresh_shell(IMPORT_SDK)  # warm the OS file cache once
    base, ours = _alternate(reps, kernel_time)
    bare_base, bare_ours = _alternate(1 if quick else 10, in_fresh_shell)
    b, o = median(base), median(ours)
    bb, bo = median(bare_base), median(bare_ours)
    return Row(
        figure="2. load cost (fresh kernel)",
        baseline=b,
        ours=o,
        unit="s",
        target="ratio <= 0.10",
        passed=o / b <= 0.10 and all(lazy),
        details=[
            f"{reps} fresh ipykernels each, interleaved; SDK and grpc left unimported by "
            f"%load_ext: {'yes' if all(lazy) else 'NO'}",
            f"bare InteractiveShell in a fresh interpreter: %load_ext {fmt_time(bo)}, "
            f"import SDK {fmt_time(bb)}, ratio {bo / bb:.3f}",
        ],
    )
