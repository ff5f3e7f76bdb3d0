"""Run a notebook's cells in a plain IPython shell and print the conversation.

``python -m yagpt_magic notebooks/quickstart.ipynb`` is the README's quickstart: with
no credentials in the environment it uses the built-in offline emulator, so it works
on a fresh machine. It needs no Jupyter server or kernel.
"""

from __future__ import annotations

import argparse
import os
import sys

from .service.connection import CREDENTIAL_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yagpt_magic", description=__doc__)
    parser.add_argument("notebook", help="an .ipynb file whose cells use %%chat")
    args = parser.parse_args(argv)

    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    notebook = nbformat.read(args.notebook, as_version=4)
    if not any(os.environ.get(name) for name, _ in CREDENTIAL_ENV):
        os.environ["YAGPT_OFFLINE"] = "1"
        print("No credentials in the environment: using the built-in offline emulator.\n")
    shell = InteractiveShell.instance()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        print("\n".join(f">>> {line}" for line in cell.source.splitlines()))
        result = shell.run_cell(cell.source, store_history=True)
        print()
        if not result.success:
            return 1
    shell.run_line_magic("unload_ext", "yagpt_magic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
