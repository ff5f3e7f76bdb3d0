"""Finished rows of ``%%chat --map`` on disk, so a re-run never pays for a row twice.

One SQLite file (``rows.sqlite`` in ``ChatMagics.cache_dir``) holds every answered
request under the SHA-256 of everything that decides its answer: the *service*
(endpoint and folder; the offline emulator is a service of its own), the model and
version, temperature, max_tokens, reasoning mode, response format and the messages.
So an answer from one service is never served as another's.

Why SQLite and not a file per row: a write is a transaction (a kernel killed
mid-write leaves the row or nothing, never a torn one a later run would trust), two
kernels can write at once, eviction is one statement, and 100,000 rows are one file,
not 100,000. Eviction: when the file passes :data:`MAX_BYTES` at the end of a job, the
rows used longest ago go (least recently used; a row is used when it is written or
served), down to :data:`KEEP_BYTES`. The ``--deferred`` jobs' operation ids live here
too, so a kernel restart finds them.

It holds prompts and replies, so the file is the user's alone (0600, its folder 0700
when we create it). It refuses what is not a regular file (a symbolic link, a FIFO, a
device: the attacker's ``/dev/zero``), reads at most :data:`MAX_ROW_BYTES` a row, and
treats a malformed file or row as a miss; a cache folder that is a file or cannot be
written is one line before anything is sent (:meth:`RowCache.check`). The folder itself
may be a link the user made (``~/.cache`` on another disk); there are no subfolders to
be swapped for links (the one-file-per-row layout of earlier versions had them: ``clear``
removes its files and never follows a linked one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.backend import Reply, RequestOptions
from ..core.conversation import Message, Usage
from ..core.errors import ConfigProblem

#: Bumped when a stored row's shape or key changes: old rows are then simply not found.
_FORMAT = 2
FILE_NAME = "rows.sqlite"
#: SQLite's companions of the file; each must be a regular file too.
_COMPANIONS = ("-wal", "-shm", "-journal")
#: At the end of a job, a file bigger than this is trimmed to KEEP_BYTES, oldest use first.
MAX_BYTES = 256 * 1024 * 1024
KEEP_BYTES = 192 * 1024 * 1024
#: The longest row read back (a reply of max_tokens is far less); longer is a miss.
MAX_ROW_BYTES = 4 * 1024 * 1024
#: Keys per SQL statement (SQLite's default limit of variables is 999).
_CHUNK = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, reply TEXT NOT NULL, "
    "used REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rows_used ON rows (used)",
    "CREATE TABLE IF NOT EXISTS operations (key TEXT PRIMARY KEY, operation TEXT NOT NULL, "
    "job TEXT NOT NULL, submitted REAL NOT NULL, error TEXT)",
    "CREATE TABLE IF NOT EXISTS jobs (job TEXT PRIMARY KEY, created REAL NOT NULL, "
    "service TEXT NOT NULL, model TEXT NOT NULL, keys TEXT NOT NULL)",
)


class CacheProblem(ConfigProblem):
    """The cache folder or file cannot be used; said before anything is sent."""


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/yagpt-magic/rows``, else ``~/.cache/yagpt-magic/rows``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "yagpt-magic" / "rows"


def request_key(messages: Sequence[Message], options: RequestOptions, service: str = "") -> str:
    """SHA-256 of the service, the model, the settings that change an answer, the messages."""
    payload = {
        "format": _FORMAT,
        "service": service,
        "model": options.model,
        "model_version": options.model_version,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "reasoning_mode": options.reasoning_mode,
        "response_format": options.response_format,
        "messages": [[m["role"], m["text"]] for m in messages],
    }
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """What ``%chat cache`` shows."""

    path: Path
    rows: int
    size: int
    pending: int
    jobs: int


def _reply_from(text: str) -> Reply | None:
    """A stored row back as a Reply; None for anything malformed (even 100k levels deep)."""
    try:
        data = json.loads(text)
        return Reply(
            text=str(data["text"]), status=data["status"], usage=Usage(**data["usage"]),
            model_uri=str(data["model_uri"]), model_version=str(data["model_version"]),
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def _what(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class RowCache:
    """Replies by request key in one SQLite file under ``directory``; thread-safe."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_dir()
        self.path = self.directory / FILE_NAME
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        #: The first failure to store a row (the job goes on; the summary says so).
        self.write_error: str = ""

    # -- opening -------------------------------------------------------------------
    def check(self) -> None:
        """Make sure rows can be kept; a ``CacheProblem`` (one line) otherwise.

        Called before a job sends anything: a cache folder that is a file, cannot be
        written, or whose file is a link or a FIFO would otherwise be found only after
        the first answer was paid for.
        """
        with self._lock:
            self._connect()

    def _refuse(self, what: str) -> CacheProblem:
        return CacheProblem(
            f"The row cache {what}; fix it or point %config ChatMagics.cache_dir "
            "somewhere else ('' for the default). Nothing was sent."
        )

    def _check_folder(self) -> None:
        folder = self.directory
        try:
            info = folder.stat()
        except FileNotFoundError:
            try:
                folder.mkdir(parents=True, mode=0o700)
            except OSError as err:
                raise self._refuse(f"folder {str(folder)!r} cannot be made ({err.strerror})") \
                    from None
            return
        except OSError as err:
            raise self._refuse(f"folder {str(folder)!r} cannot be read ({err.strerror})") \
                from None
        if not stat.S_ISDIR(info.st_mode):
            raise self._refuse(f"folder {str(folder)!r} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise self._refuse(f"folder {str(folder)!r} is not writable")

    def _check_files(self) -> None:
        """The file and its companions: absent or regular files (never followed)."""
        for path in [self.path, *(Path(f"{self.path}{s}") for s in _COMPANIONS)]:
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise self._refuse(f"file {str(path)!r} is {_what(mode)}, not a regular file")

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self._check_folder()
        self._check_files()
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
        except FileExistsError:
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
        except OSError as err:
            raise self._refuse(f"file {str(self.path)!r} cannot be made ({err.strerror})") \
                from None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            # Not a database (torn, overwritten, garbage): ours to replace, as a miss.
            with contextlib.suppress(OSError):
                self.path.unlink()
            for suffix in _COMPANIONS:
                with contextlib.suppress(OSError):
                    Path(f"{self.path}{suffix}").unlink()
            return self._connect()
        except sqlite3.Error as err:
            raise self._refuse(f"file {str(self.path)!r} cannot be used ({err})") from None
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # a crash loses the last rows, never tears
            for statement in _SCHEMA:
                db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _session(self, *, writing: bool = False) -> Iterator[sqlite3.Connection | None]:
        """The connection under the lock; None (a miss) when the file went bad meanwhile."""
        with self._lock:
            try:
                db = self._connect()
            except CacheProblem:
                if writing:
                    raise
                yield None
                return
            try:
                yield db
            except sqlite3.DatabaseError as err:  # the file went bad under us: a miss
                if writing:
                    self.write_error = self.write_error or str(err)

    # -- rows ----------------------------------------------------------------------
    def get(self, key: str) -> Reply | None:
        """The stored reply, or None (also for anything unreadable: the row is sent again)."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Reply]:
        """The stored replies of ``keys`` that are there; they count as used now."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Reply] = {}
        with self._session() as db:
            if db is None:
                return found
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, reply FROM rows WHERE key IN ({marks}) "  # noqa: S608
                    f"AND length(reply) <= {MAX_ROW_BYTES}", chunk).fetchall()
                for key, text in rows:
                    reply = _reply_from(text) if isinstance(text, str) else None
                    if reply is not None:
                        found[key] = reply
            self._touch(db, list(found))
        return found

    def _touch(self, db: sqlite3.Connection, keys: list[str]) -> None:
        now = time.time()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            db.execute(f"UPDATE rows SET used = ? WHERE key IN ({marks})",  # noqa: S608
                       [now, *chunk])

    def put(self, key: str, reply: Reply) -> None:
        """Store a reply (one transaction: the whole row or none). A failure is noted, not
        raised: the row is answered in memory, and the summary says it was not kept."""
        text = json.dumps(asdict(reply), ensure_ascii=False)
        try:
            with self._session(writing=True) as db:
                if db is not None:
                    db.execute("INSERT OR REPLACE INTO rows (key, reply, used) VALUES (?, ?, ?)",
                               (key, text, time.time()))
                    db.execute("DELETE FROM operations WHERE key = ?", (key,))
        except (CacheProblem, sqlite3.Error, OSError) as err:
            self.write_error = self.write_error or str(err)

    def __len__(self) -> int:
        count = 0
        with self._session() as db:
            if db is not None:
                count = int(db.execute("SELECT count(*) FROM rows").fetchone()[0])
        return count

    # -- size ----------------------------------------------------------------------
    def size(self) -> int:
        """Bytes on disk: the file and its write-ahead log."""
        total = 0
        for path in (self.path, Path(f"{self.path}-wal")):
            with contextlib.suppress(OSError):
                total += path.lstat().st_size
        return total

    def evict(self, max_bytes: int = MAX_BYTES, keep_bytes: int = KEEP_BYTES) -> int:
        """Past ``max_bytes``, drop the rows used longest ago down to ``keep_bytes``."""
        dropped = 0
        with self._session() as db:
            if db is None or self.size() <= max_bytes:
                return 0
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            total = int(db.execute("SELECT coalesce(sum(length(reply)) + 100 * count(*), 0) "
                                   "FROM rows").fetchone()[0])
            excess = total - keep_bytes
            rows = db.execute("SELECT key, length(reply) + 100 FROM rows ORDER BY used").fetchall()
            doomed: list[str] = []
            for key, size in rows:
                if excess <= 0:
                    break
                doomed.append(key)
                excess -= size
            for start in range(0, len(doomed), _CHUNK):
                chunk = doomed[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM rows WHERE key IN ({marks})", chunk)  # noqa: S608
            dropped = len(doomed)
            db.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return dropped

    def stats(self) -> CacheStats:
        """Where the cache is and how big, for ``%chat cache``."""
        rows = pending = jobs = 0
        if self.path.exists():
            with self._session() as db:
                if db is not None:
                    rows = int(db.execute("SELECT count(*) FROM rows").fetchone()[0])
                    pending = int(db.execute("SELECT count(*) FROM operations "
                                             "WHERE error IS NULL").fetchone()[0])
                    jobs = int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
        return CacheStats(self.path, rows, self.size(), pending, jobs)

    def clear(self) -> int:
        """Forget every row (and deferred job); returns how many rows there were."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            rows = 0
            if self.path.is_file() and not self.path.is_symlink():
                try:
                    db = self._open()
                    rows = int(db.execute("SELECT count(*) FROM rows").fetchone()[0])
                    db.close()
                except sqlite3.Error:
                    rows = 0
            for path in [self.path, *(Path(f"{self.path}{s}") for s in _COMPANIONS)]:
                with contextlib.suppress(FileNotFoundError):
                    if stat.S_ISREG(path.lstat().st_mode):
                        path.unlink()
            return rows + _clear_legacy(self.directory)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- deferred operations and jobs (bulk/deferred) ------------------------------
    def operations(self, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """Deferred requests already submitted for these keys and not answered yet:
        key -> (operation id, its error if it failed, else None)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[str, str | None]] = {}
        with self._session() as db:
            if db is None:
                return found
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, operation, error in db.execute(
                        "SELECT key, operation, error FROM operations "  # noqa: S608
                        f"WHERE key IN ({marks})", chunk):
                    found[str(key)] = (str(operation), None if error is None else str(error))
        return found

    def remember_operation(self, key: str, operation: str, job: str) -> None:
        """A submitted deferred request: kept so a restart polls it instead of paying again."""
        with self._session(writing=True) as db:
            if db is not None:
                db.execute("INSERT OR REPLACE INTO operations VALUES (?, ?, ?, ?, NULL)",
                           (key, operation, job, time.time()))

    def operation_failed(self, key: str, error: str) -> None:
        """The operation ended without an answer: a pick-up shows why, a re-run asks again."""
        with self._session(writing=True) as db:
            if db is not None:
                db.execute("UPDATE operations SET error = ? WHERE key = ?", (error, key))

    def save_job(self, job: str, service: str, model: str, keys: Sequence[str]) -> None:
        with self._session(writing=True) as db:
            if db is not None:
                db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)",
                           (job, time.time(), service, model, json.dumps(list(keys))))

    def job(self, job: str) -> tuple[str, str, list[str]] | None:
        """(service, model, keys in row order) of a deferred job, or None."""
        with self._session() as db:
            if db is None:
                return None
            row = db.execute("SELECT service, model, keys FROM jobs WHERE job = ?",
                             (job,)).fetchone()
        if row is None:
            return None
        try:
            keys = json.loads(row[2])
        except (ValueError, RecursionError):
            return None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            return None
        return str(row[0]), str(row[1]), keys

    def jobs(self, limit: int = 20) -> list[tuple[str, float, int]]:
        """The newest deferred jobs: (id, created, rows)."""
        with self._session() as db:
            if db is None:
                return []
            rows = db.execute("SELECT job, created, keys FROM jobs ORDER BY created DESC "
                              "LIMIT ?", (limit,)).fetchall()
        out = []
        for job, created, keys in rows:
            try:
                count = len(json.loads(keys))
            except (ValueError, TypeError, RecursionError):
                count = 0
            out.append((str(job), float(created), count))
        return out


def _clear_legacy(directory: Path) -> int:
    """Remove the one-file-per-row cache of earlier versions (``ab/<sha256>.json``)."""
    removed = 0
    if not directory.is_dir():
        return 0
    for shard in directory.iterdir():
        if len(shard.name) != 2 or shard.is_symlink() or not shard.is_dir():
            continue
        for path in shard.iterdir():
            name = path.name
            is_row = len(name) == 69 and name.endswith(".json")
            if (is_row or name.startswith(".tmp-")) and not path.is_symlink() and path.is_file():
                path.unlink()
                removed += is_row
        with contextlib.suppress(OSError):
            shard.rmdir()
    return removed
