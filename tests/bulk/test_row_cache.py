"""The row cache on disk: keyed by the service too, private, bounded, never a raw error."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from yagpt_magic.bulk.row_cache import MAX_ROW_BYTES, CacheProblem, RowCache, request_key
from yagpt_magic.core.backend import Reply, RequestOptions
from yagpt_magic.core.conversation import Usage

HI = [{"role": "user", "text": "hi"}]


def _reply(text: str = "hello") -> Reply:
    return Reply(text, "final", Usage(1, 2, 0, 3), "gpt://f/yandexgpt/latest", "v")


def test_the_key_holds_the_service_the_settings_and_the_messages() -> None:
    key = request_key(HI, RequestOptions(), "127.0.0.1:1|b1g")
    assert key == request_key(HI, RequestOptions(), "127.0.0.1:1|b1g")
    assert key != request_key(HI, RequestOptions(), "127.0.0.1:2|b1g")  # another emulator
    assert key != request_key(HI, RequestOptions(), "127.0.0.1:1|b1other")  # another folder
    assert key != request_key(HI, RequestOptions(temperature=0), "127.0.0.1:1|b1g")
    assert key != request_key([{"role": "user", "text": "hi!"}], RequestOptions(),
                              "127.0.0.1:1|b1g")


def test_rows_round_trip_and_the_files_are_the_users_alone(tmp_path: Path) -> None:
    folder = tmp_path / "fresh" / "rows"
    cache = RowCache(folder)
    cache.put("k1", _reply())
    assert cache.get("k1") == _reply() and cache.get("nope") is None and len(cache) == 1
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Another process (a restarted kernel) reads what this one wrote.
    assert RowCache(folder).get_many(["k1", "nope"]) == {"k1": _reply()}


def test_a_garbage_file_is_a_miss_and_then_replaced(tmp_path: Path) -> None:
    cache = RowCache(tmp_path)
    cache.put("k", _reply())
    cache.close()
    data = cache.path.read_bytes()
    cache.path.write_bytes(data[: len(data) // 3])  # what a torn copy could leave
    for name in os.listdir(tmp_path):
        if name.endswith(("-wal", "-shm")):
            os.unlink(tmp_path / name)
    again = RowCache(tmp_path)
    assert again.get("k") is None  # a miss, not sqlite3.DatabaseError
    again.put("k", _reply("new"))
    assert RowCache(tmp_path).get("k") == _reply("new")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_malformed_deep_or_huge_rows_are_misses(tmp_path: Path) -> None:
    cache = RowCache(tmp_path)
    cache.put("fine", _reply())
    cache.close()
    db = sqlite3.connect(tmp_path / "rows.sqlite")
    rows = [("deep", "[" * 100_000 + "]" * 100_000), ("torn", '{"text": "hel'),
            ("shape", '{"text": 1}'), ("huge", '{"text": "' + "x" * MAX_ROW_BYTES + '"}')]
    db.executemany("INSERT INTO rows VALUES (?, ?, 0)", rows)
    db.commit()
    db.close()
    started = time.monotonic()
    found = RowCache(tmp_path).get_many(["deep", "torn", "shape", "huge", "fine"])
    assert found == {"fine": _reply()} and time.monotonic() - started < 2


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "link-to-file"])
def test_what_is_not_a_regular_file_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "rows.sqlite"
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")  # read until the kernel is out of memory, once
    elif kind == "fifo":
        os.mkfifo(path)  # blocks a reader forever, once
    elif kind == "folder":
        path.mkdir()
    else:
        (tmp_path / "elsewhere").write_text("")
        path.symlink_to(tmp_path / "elsewhere")  # would be written through
    cache = RowCache(tmp_path)
    outcome: list[object] = []

    def use() -> None:
        outcome.append(cache.get("k"))
        try:
            cache.check()
        except CacheProblem as err:
            outcome.append(err)

    worker = threading.Thread(target=use, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "the cache blocked on it"
    assert outcome[0] is None
    message = str(outcome[1])
    assert "not a regular file" in message and "Nothing was sent" in message
    assert "\n" not in message
    if kind == "link-to-file":
        assert (tmp_path / "elsewhere").read_text() == ""  # nothing written through


def test_a_companion_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rows.sqlite-wal").symlink_to("/dev/zero")
    with pytest.raises(CacheProblem, match="rows.sqlite-wal.*symbolic link"):
        RowCache(tmp_path).check()


def test_a_cache_folder_that_is_a_file_or_unwritable_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    with pytest.raises(CacheProblem, match="is a file, not a folder.*Nothing was sent"):
        RowCache(a_file).check()
    # /proc refuses new files even to root, as a read-only or foreign folder would.
    with pytest.raises(CacheProblem, match="cannot be made|not writable"):
        RowCache("/proc/self").check()
    with pytest.raises(CacheProblem, match="cannot be read \\(Not a directory\\)"):
        RowCache(a_file / "below").check()


def test_least_recently_used_rows_go_first_past_the_cap(tmp_path: Path) -> None:
    cache = RowCache(tmp_path)
    big = "x" * 20_000
    for i in range(60):
        cache.put(f"k{i}", _reply(big))
        time.sleep(0.001)
    cache.get_many(["k0", "k1"])  # used again: now the newest
    assert cache.size() > 1_000_000
    dropped = cache.evict(max_bytes=600_000, keep_bytes=400_000)
    assert 35 <= dropped <= 45
    kept = cache.get_many([f"k{i}" for i in range(60)])
    assert "k0" in kept and "k1" in kept and "k2" not in kept and "k59" in kept
    assert cache.size() < 1_000_000  # the file shrank, it did not only stop growing
    assert cache.evict(max_bytes=10**9) == 0


def test_clear_forgets_every_row_and_the_old_one_file_per_row_layout(tmp_path: Path) -> None:
    cache = RowCache(tmp_path)
    for i in range(3):
        cache.put(f"k{i}", _reply())
    legacy = tmp_path / "ab"
    legacy.mkdir()
    (legacy / ("ab" + "0" * 62 + ".json")).write_text("{}")
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me")
    assert cache.stats().rows == 3
    assert cache.clear() == 4
    assert len(cache) == 0 and not legacy.exists() and mine.read_text() == "keep me"
    assert cache.stats().rows == 0


def test_two_kernels_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    first, second = RowCache(tmp_path), RowCache(tmp_path)

    def fill(cache: RowCache, prefix: str) -> None:
        for i in range(100):
            cache.put(f"{prefix}{i}", _reply(prefix))

    threads = [threading.Thread(target=fill, args=(c, p)) for c, p in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.write_error == second.write_error == ""
    assert len(RowCache(tmp_path)) == 200
