"""The service, live: which backend answers a request, over which connection.

``LiveBackends`` is what a session is handed when it talks to AI Studio. It keeps
what the user said about reaching the service (a credential typed at ``%chat login``,
the built-in emulator of ``%chat offline`` or ``YAGPT_OFFLINE=1``), resolves the
connection for each request from that, the settings and the environment (SPEC 2),
asks the model table which API serves the model, and keeps one backend per
(connection, API), so a changed setting takes effect on the next request while an
unchanged one reuses its channel.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.backend import Backend, RequestOptions
from ..core.models import api_for
from ..core.settings import Settings
from .connection import CREDENTIAL_ENV, Connection, Credential, CredentialKind, resolve
from .openai_compatible import API as OPENAI_COMPATIBLE
from .openai_compatible import OpenAICompatibleBackend
from .text_generation import API as TEXT_GENERATION
from .text_generation import TextGenerationBackend

if TYPE_CHECKING:
    from ..emulator import Emulator

#: How each API's backend is built for a connection.
BUILDERS: dict[str, Callable[[Connection], Backend]] = {
    TEXT_GENERATION: TextGenerationBackend,
    OPENAI_COMPATIBLE: OpenAICompatibleBackend,
}


class LiveBackends:
    """The ``Backends`` of a session that asks the service (or the built-in emulator)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: A credential typed at ``%chat login`` (kept in memory only) and its folder.
        self.login: Credential | None = None
        self.login_folder = ""
        #: The built-in emulator, once ``%chat offline`` (or ``YAGPT_OFFLINE=1``) started it.
        self.offline: Emulator | None = None
        self._opened: dict[tuple[Connection, str], Backend] = {}
        self._lock = threading.RLock()

    def log_in(self, secret: str, folder: str) -> Credential:
        """Keep a credential typed at ``%chat login`` in memory (never in a file or config)."""
        kind: CredentialKind = "iam_token" if secret.startswith("t1.") else "api_key"
        self.login = Credential(kind, secret, "%chat login")
        if folder:
            self.login_folder = folder
        return self.login

    def start_offline(self) -> Emulator:
        """Serve the built-in emulator in this process and answer from it from now on."""
        from ..emulator import Emulator

        with self._lock:
            if self.offline is None:
                key = "offline-" + secrets.token_hex(8)
                self.offline = Emulator(api_key=key).start()
                self.login = Credential("api_key", key, "%chat offline")
                self.login_folder = "offline"
            return self.offline

    def connection(self) -> Connection:
        """The connection the settings, the login and the environment describe (SPEC 2)."""
        if self.offline is None and os.environ.get("YAGPT_OFFLINE") == "1":
            self.start_offline()
        s = self.settings
        return resolve(
            login=self.login,
            login_folder=self.login_folder,
            folder_id=s.folder_id,
            endpoint=self.offline.address if self.offline else s.endpoint,
            chat_endpoint=self.offline.chat_url if self.offline else s.chat_endpoint,
            insecure=s.insecure or self.offline is not None,
            yc_profile=s.yc_profile,
            data_logging=s.data_logging,
            timeout=s.timeout,
        )

    def backend(self, options: RequestOptions) -> Backend:
        """The backend of the API that serves ``options.model``, over today's connection."""
        key = (self.connection(), api_for(options.model))
        with self._lock:
            found = self._opened.get(key)
            if found is None:
                found = self._opened[key] = BUILDERS[key[1]](key[0])
            return found

    def opened(self) -> list[Backend]:
        """The backends built so far (each holds a loop thread until closed)."""
        with self._lock:
            return list(self._opened.values())

    def secrets(self) -> tuple[str, ...]:
        """Every credential this kernel knows (login, offline, environment), so text that
        leaves it (a tool's result) can be scrubbed of them."""
        found = [self.login.value] if self.login is not None else []
        return (*found, *(os.environ[name] for name, _ in CREDENTIAL_ENV if os.environ.get(name)))

    def close(self) -> None:
        """Close every backend and stop the emulator; closing twice does nothing more."""
        with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        for backend in opened:
            backend.close()
        if self.offline is not None:
            self.offline.stop()
            self.offline = None
            self.login = None
            self.login_folder = ""
