"""Where the credential, folder and endpoint come from (SPEC section 2).

Resolution is plain code over a mapping of settings and the environment, so it can
be tested without a kernel and explained by ``%chat config`` without showing a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import ConfigProblem

#: Credential env vars, first found wins: the SDK's names, then the chat guide's.
CREDENTIAL_ENV: tuple[tuple[str, CredentialKind], ...] = (
    ("YC_API_KEY", "api_key"),
    ("YC_IAM_TOKEN", "iam_token"),
    ("YC_OAUTH_TOKEN", "oauth_token"),
    ("API_KEY", "api_key"),
    ("IAM_TOKEN", "iam_token"),
)
FOLDER_ENV = ("YC_FOLDER_ID", "FOLDER_ID")
CredentialKind = Literal["api_key", "iam_token", "oauth_token", "yc_profile"]


@dataclass(frozen=True)
class Credential:
    """A secret and what kind it is; ``repr`` never shows the value."""

    kind: CredentialKind
    value: str = field(repr=False)
    source: str = ""


@dataclass(frozen=True)
class Connection:
    """Everything the backend needs to reach the service."""

    credential: Credential
    folder_id: str
    endpoint: str | None
    insecure: bool = False
    data_logging: bool = False
    timeout: float = 30.0
    #: The OpenAI-compatible API's base URL (the SDK's ``service_map`` for
    #: ``http_completions``); None: the one the SDK derives from the endpoint.
    chat_endpoint: str | None = None

    @property
    def shown_endpoint(self) -> str:
        return self.endpoint or "llm.api.cloud.yandex.net (SDK default)"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.credential.value,) if self.credential.kind != "yc_profile" else ()


def resolve_credential(
    login: Credential | None, env: Mapping[str, str], yc_profile: str
) -> Credential | None:
    """First found wins: ``%chat login``, the env vars, then a ``yc`` CLI profile."""
    if login is not None:
        return login
    for name, kind in CREDENTIAL_ENV:
        if env.get(name):
            return Credential(kind, env[name], f"env {name}")
    if yc_profile:
        return Credential("yc_profile", yc_profile, "%config ChatMagics.yc_profile")
    return None


def resolve_folder(configured: str, login_folder: str, env: Mapping[str, str]) -> tuple[str, str]:
    """The folder id and where it came from ('' when unset)."""
    if login_folder:
        return login_folder, "%chat login"
    if configured:
        return configured, "%config ChatMagics.folder_id"
    for name in FOLDER_ENV:
        if env.get(name):
            return env[name], f"env {name}"
    return "", "unset"


def resolve_endpoint(configured: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    if configured:
        return configured, "%config ChatMagics.endpoint"
    if env.get("YC_API_ENDPOINT"):
        return env["YC_API_ENDPOINT"], "env YC_API_ENDPOINT"
    return None, "default"


def resolve_chat_endpoint(configured: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The OpenAI-compatible API's base URL and where it came from (None: the SDK's)."""
    if configured:
        return configured, "%config ChatMagics.chat_endpoint"
    if env.get("YAGPT_CHAT_ENDPOINT"):
        return env["YAGPT_CHAT_ENDPOINT"], "env YAGPT_CHAT_ENDPOINT"
    return None, "default"


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_chat_endpoint(url: str, insecure: bool) -> str:
    """A base URL the SDK can take, or a one-line ``ConfigProblem``.

    Plain ``http://`` would send the key unencrypted: it is allowed only to this
    machine (127.0.0.1, localhost) and only with ``insecure`` (SPEC 15).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigProblem(
            f"ChatMagics.chat_endpoint must be a base URL such as https://HOST/v1/ or "
            f"http://127.0.0.1:PORT/v1/, not {url!r}."
        )
    if parts.scheme == "http":
        host = parts.hostname or ""
        if host not in _LOOPBACK or not insecure:
            raise ConfigProblem(
                "Plain HTTP would send the credential unencrypted: use https://, or for a "
                "server on this machine http://127.0.0.1:PORT/v1/ with "
                "%config ChatMagics.insecure = True."
            )
    return url if url.endswith("/") else url + "/"


def resolve_insecure(configured: bool, env: Mapping[str, str]) -> bool:
    return configured or env.get("YAGPT_INSECURE", "") in ("1", "true", "yes")


def resolve(
    *,
    login: Credential | None,
    login_folder: str,
    folder_id: str,
    endpoint: str,
    insecure: bool,
    yc_profile: str,
    data_logging: bool,
    timeout: float,
    chat_endpoint: str = "",
    env: Mapping[str, str] | None = None,
) -> Connection:
    """Build a ``Connection`` or say, in one line, exactly what to set."""
    env = os.environ if env is None else env
    credential = resolve_credential(login, env, yc_profile)
    folder, _ = resolve_folder(folder_id, login_folder, env)
    if credential is None:
        raise ConfigProblem(
            "No YandexGPT credential found: set YC_API_KEY (or YC_IAM_TOKEN) and YC_FOLDER_ID, "
            "run %chat login, or run %chat offline to use the built-in emulator."
        )
    if not folder:
        raise ConfigProblem(
            "No folder id: set YC_FOLDER_ID, %config ChatMagics.folder_id = '<folder>', "
            "or run %chat login."
        )
    url, _ = resolve_endpoint(endpoint, env)
    insecure = resolve_insecure(insecure, env)
    chat_url, _ = resolve_chat_endpoint(chat_endpoint, env)
    return Connection(
        credential=credential,
        folder_id=folder,
        endpoint=url,
        insecure=insecure,
        data_logging=data_logging,
        timeout=timeout,
        chat_endpoint=check_chat_endpoint(chat_url, insecure) if chat_url else None,
    )
