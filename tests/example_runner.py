"""Run one of the SDK's example scripts (tests/sdk_examples) against the emulator.

``python tests/example_runner.py SCRIPT [--until-eof]`` runs SCRIPT as ``__main__``
unchanged but for where it connects: the SDK's ``AIStudio`` and ``AsyncAIStudio`` get,
unless the script passes its own, the emulator's gRPC address as ``endpoint``
(``YAGPT_EXAMPLE_ENDPOINT``), ``verify=False`` (plaintext on 127.0.0.1) and
``service_map={"http_completions": YAGPT_EXAMPLE_CHAT_URL}``. Credentials and the folder
come from the environment (``YC_API_KEY``, ``YC_FOLDER_ID``), as the examples expect.

``--until-eof``: a script that reads requests in an endless ``input()`` loop ends when
stdin does (an ``EOFError`` from ``input()``), as a person ends it with Ctrl-D; that is
its normal end, exit 0. Any other error is the script's failure.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any


def _connected(base: type) -> type:
    """``base`` with the emulator's connection as its defaults."""

    class Connected(base):  # type: ignore[valid-type,misc]
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("endpoint", os.environ["YAGPT_EXAMPLE_ENDPOINT"])
            kwargs.setdefault("verify", False)
            kwargs.setdefault(
                "service_map", {"http_completions": os.environ["YAGPT_EXAMPLE_CHAT_URL"]}
            )
            super().__init__(**kwargs)

    Connected.__name__ = Connected.__qualname__ = base.__name__
    return Connected


def main(argv: list[str]) -> int:
    import yandex_ai_studio_sdk

    yandex_ai_studio_sdk.AIStudio = _connected(yandex_ai_studio_sdk.AIStudio)  # type: ignore[misc]
    yandex_ai_studio_sdk.AsyncAIStudio = _connected(  # type: ignore[misc]
        yandex_ai_studio_sdk.AsyncAIStudio
    )
    script, until_eof = argv[0], "--until-eof" in argv[1:]
    sys.argv = [script]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except EOFError:
        if not until_eof:
            raise
        print("\n[stdin closed: the session ended]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
