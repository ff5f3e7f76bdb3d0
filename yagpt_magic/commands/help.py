"""``%chat`` / ``%chat help``: usage, with examples."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..magics import ChatMagics

USAGE = """\
yagpt-magic: chat with YandexGPT from a notebook.

  %%chat [-t THREAD] [-m MODEL] [--temperature T] [--max-tokens N] [-s SYSTEM]
         [--no-stream] [-o NAME] [--vars]
  <your message>

Re-running a %%chat cell replaces its turn; the model always sees the earlier turns
of the thread, fitted to its context window.

Commands:
  %chat history [-t T]        the turns of a thread
  %chat threads               all threads, with turn counts and tokens
  %chat system [-t T] TEXT    set (or, with no text, clear) a thread's system prompt;
                              the rest of the line as typed, or --json "a\\nJSON string"
  %chat undo [-t T]           drop the last turn
  %chat reset [-t T | --all]  empty a thread, or all of them
  %chat usage [-t T]          tokens used so far
  %chat config                effective settings and where each came from
  %chat models                known models, their context windows, the current one
  %chat login                 enter an API key / IAM token and folder id (kept in memory)
  %chat offline               use the built-in offline emulator (no credentials needed)
  %chat save PATH [-t T] [--force]
                              write a transcript (.ipynb, .md, .json or .jsonl);
                              --force overwrites a file yagpt-magic did not write
  %chat load PATH [-t T]      rebuild threads from a transcript
  %chat record PATH.jsonl [--append]
                              append every new turn to PATH as it completes
  %chat replay PATH           answer from PATH, offline; %chat live ends either mode
  %chat restore [PATH]        rebuild threads from this notebook after a restart
  %chat widget [-t T]         a chat box on a thread

Examples:
  %%chat -s "You are a smart assistant"
  Hi! What fields of science did Albert Einstein study?

  %%chat -t sql -m yandexgpt-lite --temperature 0.1 -o query
  Write a SQL query that counts orders per day.

  %config ChatMagics.max_tokens = 500
"""


class Help(str):
    """Shown as plain text in both terminal and notebook."""

    def __repr__(self) -> str:
        return str(self)


def run(magics: ChatMagics, argv: list[str]) -> Help:
    return Help(USAGE)
