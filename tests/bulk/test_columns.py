"""``bulk/columns.py``: the replies of ``--map`` as DataFrame columns, never over the
user's own, in one step; a row's trouble stays in its row."""

from __future__ import annotations

import pandas as pd
import pytest

from yagpt_magic.bulk.columns import MAX_FIELDS, OURS, check_output, shaped
from yagpt_magic.core.errors import InvalidReply, UsageProblem


def frame() -> pd.DataFrame:
    return pd.DataFrame({"text": ["good", "bad"], "id": [1, 2]}, index=[10, 20])


def test_a_list_stays_a_list_and_a_frame_gets_a_copy_with_the_column() -> None:
    assert shaped(["a", "b"], "reply", ["x", "y"]) == ["x", "y"]
    data = frame()
    out = shaped(data, "label", ["positive", "negative"])
    assert list(out.columns) == ["text", "id", "label"]
    assert list(out.index) == [10, 20] and list(out["label"]) == ["positive", "negative"]
    assert list(data.columns) == ["text", "id"]  # the user's frame is not changed


def test_fields_become_columns_and_one_named_like_an_input_is_prefixed() -> None:
    out = shaped(frame(), "reply", [{"text": "ok", "score": 5}, {"text": "no", "score": 1}])
    assert list(out.columns) == ["text", "id", "reply_text", "score"]
    assert list(out["text"]) == ["good", "bad"]  # the input column is the user's, untouched
    assert list(out["reply_text"]) == ["ok", "no"]


def test_a_rerun_replaces_its_own_columns_instead_of_prefixing_them_again() -> None:
    once = shaped(frame(), "reply", [{"label": "a"}, {"label": "b"}])
    assert once.attrs[OURS] == ["label"]
    again = shaped(once, "reply", [{"label": "c"}, {"label": "d"}])
    assert list(again.columns) == ["text", "id", "label"]
    assert list(again["label"]) == ["c", "d"]


def test_a_reply_with_too_many_fields_is_an_error_in_its_row_only() -> None:
    huge = {f"k{i}": i for i in range(MAX_FIELDS + 1)}
    out = shaped(frame(), "reply", [huge, {"label": "fine"}])
    assert list(out.columns) == ["text", "id", "label"]
    assert isinstance(out["label"][10], InvalidReply)
    assert f"at most {MAX_FIELDS} become columns" in str(out["label"][10])
    assert out["label"][20] == "fine"


def test_a_field_whose_prefixed_name_is_taken_too_is_an_error_the_user_sees() -> None:
    data = pd.DataFrame({"text": ["a", "b"], "reply_text": ["mine", "yours"]})
    out = shaped(data, "reply", [{"text": "theirs"}, {"label": "ok"}])
    assert list(out["reply_text"]) == ["mine", "yours"]
    assert isinstance(out["label"][0], InvalidReply) and out["label"][1] == "ok"
    assert "named like an input column" in str(out["label"][0])
    # When no field of any row could be stored, the errors go in the job's column.
    alone = shaped(data, "reply", [{"text": "theirs"}, {"text": "again"}])
    assert list(alone.columns) == ["text", "reply_text", "reply"]
    assert all(isinstance(value, InvalidReply) for value in alone["reply"])


def test_any_field_name_is_a_column_even_self() -> None:
    out = shaped(frame(), "reply", [{"self": 1, "": 2, 0: 3}, {"self": 4, "": 5, 0: 6}])
    assert list(out.columns) == ["text", "id", "self", "", "0"]


def test_o_naming_a_users_column_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(UsageProblem, match="already has a column 'text' of its own"):
        check_output(frame(), "text")
    check_output(frame(), "label")
    check_output(["a list"], "text")  # a list has no columns to protect
