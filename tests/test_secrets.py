"""Credentials (SPEC 2): a distinctive key never lands in outputs, transcripts, logs or stderr."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import nbformat
from nbformat.v4 import new_code_cell, new_notebook, output_from_msg

from yagpt_magic.emulator import Emulator

from .conftest import emulator_env
from .kernel import Kernel

CANARY = "CANARY-7f3a9c-do-not-leak-0451"


def test_the_key_appears_nowhere(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    cells = [
        "import logging, sys\n"
        f"logging.basicConfig(level=logging.DEBUG, filename={str(log)!r}, force=True)\n"
        "logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))\n"
        "logging.getLogger('grpc').setLevel(logging.DEBUG)",
        "%load_ext yagpt_magic",
        "%%chat\nHello there",
        "%%chat\nThis one fails on purpose",
        "%config ChatMagics.verbose_errors = True",
        "%%chat\nThis one fails with the whole traceback",
        "%chat config",
        "%chat history",
        f"%chat save {tmp_path / 'transcript.ipynb'}",
        f"%chat save {tmp_path / 'transcript.json'}",
        f"%chat save {tmp_path / 'transcript.md'}",
        "%env YC_FOLDER_ID",
    ]
    with Emulator(api_key=CANARY) as emulator, \
            open(tmp_path / "kernel-stderr.txt", "wb") as stderr, \
            Kernel(emulator_env(emulator), stderr=stderr) as kernel:
        runs = []
        for index, code in enumerate(cells):
            if index in (3, 5):  # the service echoes the credential back in its error
                emulator.fail(grpc.StatusCode.PERMISSION_DENIED,
                              "access denied for {authorization} in folder b1gtest")
            runs.append(kernel.run(code))
        assert emulator.completions[0].metadata["authorization"] == f"Api-Key {CANARY}"

    assert [r.ok for r in runs] == [True, True, True, False, True, False, True, True,
                                    True, True, True, True]
    assert "permission denied" in runs[3].error.lower()
    assert "Traceback" in runs[5].text or runs[5].reply["content"]["traceback"]

    # Save the notebook as a front end would, outputs and all.
    nb = new_notebook(cells=[new_code_cell(code) for code in cells])
    for cell, run in zip(nb.cells, runs, strict=True):
        cell.outputs = [output_from_msg(m) for m in run.messages
                        if m["msg_type"] in ("stream", "display_data", "execute_result", "error")]
    nbformat.write(nb, tmp_path / "saved.ipynb")

    places = {
        "saved notebook": (tmp_path / "saved.ipynb").read_text(),
        "kernel messages": json.dumps([r.messages for r in runs], default=str),
        "kernel replies": json.dumps([r.reply["content"] for r in runs], default=str),
        "debug log": log.read_text(),
        "kernel stderr": (tmp_path / "kernel-stderr.txt").read_text(errors="replace"),
    }
    places.update({f"transcript {p.suffix}": p.read_text()
                   for p in tmp_path.glob("transcript.*")})
    assert len(places) == 8
    assert places["debug log"], "DEBUG logging captured nothing; the test would prove nothing"
    for where, text in places.items():
        assert CANARY not in text, f"the key leaked into the {where}"
        assert CANARY[:-4] not in text, f"part of the key leaked into the {where}"
