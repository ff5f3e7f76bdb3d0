"""Credentials (SPEC 2): a distinctive key never lands in outputs, transcripts, logs or
stderr, in any form; nothing shaped like a key is accepted where the notebook saves it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, output_from_msg

from yagpt_magic.emulator import Emulator

from .conftest import emulator_env, fails, magics_of
from .kernel import Kernel
from .leaks import echoes, leaked

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


# -- every form in which a server may echo the key back ----------------------------------

#: A key whose base64 forms differ between alphabets and whose characters need escaping.
ENCODED_CANARY = "AQVNcanary/7f3a9c-do_not.leak/0451QwErTy+~z"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a kernel message, as a front end would show or save it."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def test_no_form_of_the_key_appears_anywhere(tmp_path: Path) -> None:
    forms = echoes(ENCODED_CANARY)
    codes = [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
             grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED]
    session = ("Error in session internal_id=9c2f4a1b&request_id=2b0e-77&"
               "client_request_id=6f1e&folder_id=b1gtest: ")
    with Emulator(api_key=ENCODED_CANARY) as emulator, \
            open(tmp_path / "kernel-stderr.txt", "wb") as stderr, \
            Kernel(emulator_env(emulator), stderr=stderr) as kernel:
        runs = [kernel.run("%load_ext yagpt_magic")]
        for verbose in (False, True):
            runs.append(kernel.run(f"%config ChatMagics.verbose_errors = {verbose}"))
            for index, (name, form) in enumerate(sorted(forms.items())):
                emulator.fail(codes[index % len(codes)], f"{session}denied for {form} here")
                run = kernel.run(f"%%chat\nturn {index}")
                assert not run.ok, name
                runs.append(run)
        assert emulator.completions[0].metadata["authorization"] == f"Api-Key {ENCODED_CANARY}"

    shown = "\n".join(_strings([[r.messages, r.reply["content"]] for r in runs]))
    assert shown.count("denied for") >= 2 * len(forms), "the echoes must reach the outputs"
    one_line = [r.error for r in runs[2 : 2 + len(forms)]]
    assert not [e for e in one_line if "internal_id" in e]
    assert len([e for e in one_line if "denied for" in e]) >= len(forms) // 2  # cause shown
    places = {
        "kernel messages": _ANSI.sub("", shown),
        "kernel stderr": (tmp_path / "kernel-stderr.txt").read_text(errors="replace"),
    }
    for where, text in places.items():
        assert leaked(ENCODED_CANARY, text) == [], f"the key leaked into the {where}"


def test_the_echo_forms_carry_the_key() -> None:
    """The canary above proves something only if each form really holds the key."""
    for name, form in echoes(ENCODED_CANARY).items():
        assert ENCODED_CANARY not in form and leaked(ENCODED_CANARY, form), name


def test_a_refused_config_value_is_one_line_and_rolled_back(
    shell: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shell.run_cell("%config ChatMagics.model = 'Api-Key AQVN0123456789abcdef'")
    assert magics_of(shell).model == "yandexgpt"
    message = caplog.records[0].getMessage()
    assert message.startswith("ChatMagics.model looks like a credential")
    assert "AQVN0123" not in message


KEY_SHAPED = "AQVNxk3d9s8f7g6h5j4k3l2"


@pytest.mark.parametrize("cell", [
    f"%%chat -s {KEY_SHAPED}\nhello",
    f"%%chat -m {KEY_SHAPED}\nhello",
    f"%%chat -t {KEY_SHAPED}\nhello",
    f"%%chat -o {KEY_SHAPED}\nhello",
    f"%%chat -s 'You are helpful. Use Api-Key {KEY_SHAPED}'\nhello",
    f"%chat system You may use {KEY_SHAPED} to log in.",
    f"%chat history -t {KEY_SHAPED}",
])
def test_key_shaped_values_are_refused_in_every_flag(
    shell: Any, emulator: Emulator, cell: str
) -> None:
    message = fails(shell, cell)
    assert "looks like a credential" in message and KEY_SHAPED not in message
    assert emulator.completions == []
    session = magics_of(shell).session
    assert all(KEY_SHAPED not in (t.system_prompt + name) for name, t in session.threads.items())


def test_a_refused_config_value_does_not_linger(
    shell: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shell.run_cell(f"%config ChatMagics.system_prompt = 'Use {KEY_SHAPED} please'")
    shell.run_cell("%config ChatMagics.folder_id = 't1.9euelZqPjpqTl5qSkcnJyZ'")
    assert "ChatMagics" not in shell.config or not shell.config.ChatMagics
    shell.run_cell("%reload_ext yagpt_magic").raise_error()
    assert "chat" in shell.magics_manager.magics["cell"]
    assert magics_of(shell).settings.system_prompt == ""
    # The one-shot purge is gone; the one hook left is the cell log --cells reads (SPEC 16).
    assert shell.events.callbacks["post_run_cell"] == [magics_of(shell).cells.post_run_cell]
