"""``core/context.py``: the last cells before a message, fitted and scrubbed (SPEC 16)."""

from __future__ import annotations

from yagpt_magic.core.context import (
    RESULT_CHARS,
    CellContext,
    RanCell,
    message_room,
    with_cells,
)
from yagpt_magic.core.conversation import REQUEST_ALLOWANCE, message_bound
from yagpt_magic.core.frames import text_tokens

from ..leaks import leaked

CELLS = [RanCell("a = 'first'"), RanCell("b = 'second'\nb", result="'second'"),
         RanCell("1/0", error="ZeroDivisionError: division by zero")]


def test_the_cells_go_oldest_first_then_the_message() -> None:
    context = with_cells("Why did it fail?", CELLS, asked=3, room=10_000)
    text = context.text
    assert (context.sent, context.ran) == (3, 3)
    assert text.index("a = 'first'") < text.index("b = 'second'") < text.index("1/0")
    assert "Cell 2:\n```python\nb = 'second'\nb\n```\nIts result:\n```\n'second'\n```" in text
    assert "Its error:\n```\nZeroDivisionError: division by zero\n```" in text
    assert text.endswith("My message:\n\nWhy did it fail?")
    assert context.note(32768) == "The last 3 code cells went in before the message."


def test_the_oldest_cells_are_left_out_first_and_the_note_says_so() -> None:
    big = [RanCell(f"x{n} = '{'v' * 900}'") for n in range(1, 6)]
    whole = with_cells("Q", big, asked=5, room=10_000).text
    room = text_tokens(whole) - 1500  # room for about three of the five
    context = with_cells("Q", big, asked=5, room=room)
    assert text_tokens(context.text) <= room
    assert 0 < context.sent < 5
    kept = [n for n in range(1, 6) if f"x{n} = " in context.text]
    assert kept == list(range(6 - context.sent, 6))  # the newest ones
    left = 5 - context.sent
    assert context.note(4096) == (
        f"{context.sent} of the last 5 code cells went in before the message; the {left} "
        "oldest were left out to fit the 4,096-token window.")


def test_with_no_room_for_any_cell_the_message_goes_alone() -> None:
    context = with_cells("Q", CELLS, asked=2, room=5)
    assert context.text == "Q" and context.sent == 0


def test_fewer_cells_than_asked_are_sent_and_the_note_says_so() -> None:
    context = with_cells("Q", CELLS[:1], asked=4, room=10_000)
    assert context.note(32768) == ("The last code cell went in before the message (only 1 "
                                   "had run of the 4 asked for).")


def test_credentials_are_scrubbed_from_source_results_and_errors() -> None:
    key = "AQVNtest0secret0key0value0123456789"
    iam = "t1.9euelZqXnZWUk5GRmZeSlZKOnJyTy-e"
    cells = [RanCell(f"key = '{key}'\nkey", result=repr(key)),
             RanCell("token = get()", error=f"ValueError: bad token {iam}"),
             RanCell("k = os.environ['YC_API_KEY']\nk.encode().hex()",
                     result=repr(b"other-secret-1234".hex()))]
    context = with_cells("Q", cells, asked=3, room=10_000, secrets=["other-secret-1234"])
    assert leaked(key, context.text) == [] and iam not in context.text
    assert leaked("other-secret-1234", context.text) == []
    assert context.text.count("***") >= 3


def test_a_long_result_is_cut_and_says_how_much_was_left_out() -> None:
    cell = RanCell("x", result="r" * (RESULT_CHARS + 500))
    text = with_cells("Q", [cell], asked=1, room=100_000).text
    assert "r" * RESULT_CHARS in text and "r" * (RESULT_CHARS + 1) not in text
    assert "[… 500 more characters left out]" in text


def test_a_fence_inside_a_cell_cannot_close_its_block() -> None:
    cell = RanCell('print("""```\\nnot code\\n```""")')
    text = with_cells("Q", [cell], asked=1, room=10_000).text
    assert "````python\n" in text


def test_the_room_is_the_bound_fitting_takes_for_a_message_alone() -> None:
    room = message_room(4096, 1000, "Be brief")
    text = "x" * room
    assert REQUEST_ALLOWANCE + message_bound("Be brief") + message_bound(text) == 4096 - 1000
    assert isinstance(with_cells(text, [], asked=1, room=room), CellContext)
