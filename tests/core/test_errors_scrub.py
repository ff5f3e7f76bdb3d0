"""errors.scrub: a credential echoed back in any form never reaches the user (SPEC 2)."""

from __future__ import annotations

import string
import time
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yagpt_magic.core.errors import scrub, scrubbed_cause

from ..leaks import echoes, leaked

KEY = "AQVNcanary/7f3a9c-do_not.leak/0451QwErTy"
FORMS = sorted(echoes(KEY))

keys = st.text(alphabet=string.ascii_letters + string.digits + "-_./+~", min_size=12, max_size=60)
#: Text around an echo: words, punctuation, line breaks; no escape characters of its own.
around = st.text(alphabet=string.ascii_letters + string.digits + " .,:;!?()[]'\"=\n",
                 max_size=120)


def test_every_form_is_covered() -> None:
    assert len(FORMS) >= 30
    for name in ("base64+0", "base64+1", "base64+2", "base64-urlsafe-nopad+1",
                 "url-encoded, every byte, lower hex", "json \\u escapes",
                 "html hex entities", "split across lines", "a run of 8"):
        assert name in FORMS


@pytest.mark.parametrize("name", FORMS)
def test_each_form_is_scrubbed(name: str) -> None:
    text = f"denied: {echoes(KEY)[name]} (folder b1gtest)"
    assert leaked(KEY, text), "the form must carry the key, or the test proves nothing"
    out = scrub(text, [KEY])
    assert "***" in out and leaked(KEY, out) == []
    assert out.startswith("denied: ") and out.endswith(" (folder b1gtest)")


@settings(max_examples=200, deadline=None)
@given(key=keys, before=around, after=around, name=st.sampled_from(FORMS))
def test_random_keys_in_random_text(key: str, before: str, after: str, name: str) -> None:
    form = echoes(key).get(name)
    if form is None:  # this key happens to survive the encoding verbatim: covered elsewhere
        return
    out = scrub(before + form + after, [key])
    assert leaked(key, out) == []


@settings(max_examples=200, deadline=None)
@given(key=keys, before=around, after=around)
def test_the_verbatim_key_and_its_header(key: str, before: str, after: str) -> None:
    out = scrub(f"{before}Api-Key {key}{after}", [key])
    assert key not in out and leaked(key, out) == []


@given(text=around)
def test_text_without_the_key_is_unchanged(text: str) -> None:
    assert scrub(text, [KEY]) == text


def test_only_runs_of_eight_count() -> None:
    assert scrub(f"x{KEY[:7]}x", [KEY]) == f"x{KEY[:7]}x"
    assert scrub(f"x{KEY[:8]}x", [KEY]) == "x***x"


def test_short_and_empty_secrets() -> None:
    assert scrub("a b c", ["", "a"]) == "a b c"
    assert scrub("key=abcde!", ["abcde"]) == "key=***!"


def test_the_verbose_traceback_chain_is_scrubbed() -> None:
    try:
        raise RuntimeError("peer said: " + echoes(KEY)["url-encoded, every byte, lower hex"]
                           + " and " + echoes(KEY)["base64 of an Api-Key header"])
    except RuntimeError as err:
        cause = str(scrubbed_cause(err, [KEY]))
    assert "Traceback" in cause and "peer said" in cause
    assert leaked(KEY, cause) == []


def test_a_five_kilobyte_traceback_costs_little() -> None:
    lines = "".join(traceback.format_stack()) * 50
    text = lines[:5000] + f'details = "denied for Api-Key {KEY}"'
    scrub(text, [KEY])  # the key's needles are built once
    started = time.perf_counter()
    for _ in range(20):
        out = scrub(text, [KEY])
    assert (time.perf_counter() - started) / 20 < 0.02  # ~1 ms on a laptop
    assert KEY not in out and out.startswith(lines[:100])
