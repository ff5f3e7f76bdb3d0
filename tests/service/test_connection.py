"""Where the credential, folder and endpoint come from (SPEC 2), without a kernel."""

from __future__ import annotations

import pytest

from yagpt_magic.core.errors import ConfigProblem
from yagpt_magic.service.connection import Credential, resolve, resolve_credential, resolve_folder

BASE = {"login": None, "login_folder": "", "folder_id": "", "endpoint": "", "insecure": False,
        "yc_profile": "", "data_logging": False, "timeout": 30.0}


def test_first_found_wins_login_then_sdk_names_then_guide_names_then_profile() -> None:
    login = Credential("api_key", "from-login", "%chat login")
    env = {"API_KEY": "guide", "YC_IAM_TOKEN": "sdk-iam", "YC_API_KEY": "sdk-key"}
    assert resolve_credential(login, env, "prof") is login
    assert resolve_credential(None, env, "prof").value == "sdk-key"  # type: ignore[union-attr]
    found = resolve_credential(None, {"API_KEY": "guide", "IAM_TOKEN": "t"}, "prof")
    assert found is not None and (found.kind, found.source) == ("api_key", "env API_KEY")
    found = resolve_credential(None, {}, "prof")
    assert found is not None and found.kind == "yc_profile"
    assert resolve_credential(None, {}, "") is None


def test_folder_order_and_sources() -> None:
    env = {"YC_FOLDER_ID": "env1", "FOLDER_ID": "env2"}
    assert resolve_folder("cfg", "login", env) == ("login", "%chat login")
    assert resolve_folder("cfg", "", env) == ("cfg", "%config ChatMagics.folder_id")
    assert resolve_folder("", "", env) == ("env1", "env YC_FOLDER_ID")
    assert resolve_folder("", "", {"FOLDER_ID": "f"}) == ("f", "env FOLDER_ID")


def test_missing_credential_names_what_to_set() -> None:
    with pytest.raises(ConfigProblem) as err:
        resolve(**BASE, env={})
    assert "YC_API_KEY" in str(err.value) and "%chat offline" in str(err.value)


def test_missing_folder_is_its_own_message() -> None:
    with pytest.raises(ConfigProblem, match="No folder id"):
        resolve(**BASE, env={"YC_API_KEY": "k"})


def test_connection_never_shows_the_secret() -> None:
    conn = resolve(**{**BASE, "endpoint": "127.0.0.1:1"},
                   env={"YC_API_KEY": "AQVN-secret-value", "YC_FOLDER_ID": "b1g",
                        "YAGPT_INSECURE": "1"})
    assert conn.insecure and conn.endpoint == "127.0.0.1:1"
    assert "AQVN-secret-value" not in repr(conn)
    assert conn.secrets == ("AQVN-secret-value",)


def test_the_chat_endpoint_comes_from_config_then_env_and_plain_http_only_to_this_machine() -> None:
    env = {"YC_API_KEY": "k", "YC_FOLDER_ID": "f", "YAGPT_CHAT_ENDPOINT": "https://env.example/v1"}
    assert resolve(**BASE, env=env).chat_endpoint == "https://env.example/v1/"
    configured = {**BASE, "chat_endpoint": "https://cfg.example/v1/"}
    assert resolve(**configured, env=env).chat_endpoint == "https://cfg.example/v1/"
    assert resolve(**BASE, env={"YC_API_KEY": "k", "YC_FOLDER_ID": "f"}).chat_endpoint is None
    local = {**BASE, "chat_endpoint": "http://127.0.0.1:8080/v1/", "insecure": True}
    assert resolve(**local, env=env).chat_endpoint == "http://127.0.0.1:8080/v1/"
    for url, insecure in [("http://127.0.0.1:8080/v1/", False), ("http://example.com/v1/", True),
                          ("127.0.0.1:8080", True)]:
        with pytest.raises(ConfigProblem) as err:
            resolve(**{**BASE, "chat_endpoint": url, "insecure": insecure}, env=env)
        assert "\n" not in str(err.value) and "http" in str(err.value)
