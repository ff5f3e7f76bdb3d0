"""``core/credentials.py``: what a Yandex Cloud credential looks like, so none is accepted
where the notebook would save it (flags, ``%config``) and none leaves in text sent out."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from yagpt_magic.core.credentials import looks_like_credential, mask_credentials, refuse_secret
from yagpt_magic.core.errors import UsageProblem

# -- values shaped like a credential ---------------------------------------------------

@pytest.mark.parametrize("value", [
    "AQVNzzzsecret", "AQVN1234abcd-_xyzAQVNabc", "t1.9euelZqJjp2Qm5aZkJeZyc", "y0_AgAAAAB3",
    "y3_AbCdEf0123", " AQVNsecret1 ", "'AQVNsecret1'", "Api-Key AQVNsecret1",
    "Bearer t1.abcdefgh", "bearer y1_abcdefgh", ["images.example.com", "AQVNsecret1"],
    "You are a bot. Use AQVN4f3k2j1h0g9f8e7d6c5b4a to call the API.",
    "system prompt with t1.9euelZqJjp2Qm5aZkJeZycmLy in it",
    "Authorization: Bearer 3f9a8b7c6d5e4f3a2b1c",
    "header Api-Key abcdef0123456789abcdef",
])
def test_credential_shapes_are_refused(value: object) -> None:
    assert looks_like_credential(value)
    with pytest.raises(UsageProblem) as refused:
        refuse_secret(value, "-s")
    message = str(refused.value)
    assert message.startswith("-s looks like a credential") and "\n" not in message
    assert "YC_API_KEY" in message and "%chat login" in message
    assert str(value).strip() not in message
    assert isinstance(refused.value, TraitError)  # %config rolls the value back


@pytest.mark.parametrize("value", [
    "", "yandexgpt", "yandexgpt-lite/rc", "gpt://b1gtest/yandexgpt/latest", "b1gtest",
    "t1", "t1.x", "thread-1", "AQV", "You are a helpful assistant.",
    "Explain Bearer authentication and API keys in two sentences.",
    "Use model version t1.5 of the API", "llm.api.cloud.yandex.net:443", "my_answer",
    "y1_notes", "t1.draft", 0.6, 2000, True, None, ["llm.example.com", "cdn.example.com"],
])
def test_ordinary_values_pass(value: object) -> None:
    assert not looks_like_credential(value)
    assert refuse_secret(value, "ChatMagics.model") == value


def test_text_sent_out_has_every_credential_shape_masked_and_the_rest_kept() -> None:
    traceback = ("PermissionDenied: key AQVN4f3k2j1h0g9f8e7d6c5b4a refused\n"
                 "  headers: Authorization: Bearer 3f9a8b7c6d5e4f3a2b1c\n"
                 "  model gpt://b1gtest/yandexgpt/latest, token t1.draft")
    masked = mask_credentials(traceback)
    assert "AQVN4f3k" not in masked and "3f9a8b7c" not in masked
    assert masked.count("***") == 2
    assert "gpt://b1gtest/yandexgpt/latest" in masked and "t1.draft" in masked
