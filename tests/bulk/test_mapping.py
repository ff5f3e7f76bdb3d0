"""``%%chat --map`` and ``yagpt_magic.map``: many independent rows through the real SDK."""

from __future__ import annotations

import _thread
import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

import yagpt_magic
from yagpt_magic.core.errors import ContentFiltered, ServiceError
from yagpt_magic.emulator import Emulator

from ..conftest import fails, magics_of

pd = pytest.importorskip("pandas")


@pytest.fixture
def session(shell: Any, tmp_path: Path) -> Any:
    """The shell's session with its row cache in a fresh directory."""
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    return magics_of(shell).session


def _users(emulator: Emulator) -> list[str]:
    return [r.messages[-1][1] for r in emulator.completions]


def test_rows_keep_their_order_and_are_sent_independently(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    shell.run_cell("%config ChatMagics.system_prompt = 'Be brief.'").raise_error()
    shell.run_cell("%%chat\nHello").raise_error()  # a thread with history
    emulator.reset()
    items = [f"review number {i}" for i in range(12)]
    got = yagpt_magic.map("Classify: {item}", items, session=session, progress=False)

    assert len(got) == 12
    for item, reply in zip(items, got):
        assert f"“Classify: {item}”" in reply  # the emulator quotes the message it answered
    # Each request is the system prompt and that row alone: no thread history.
    assert sorted(list(r.messages) for r in emulator.completions) == sorted(
        [("system", "Be brief."), ("user", f"Classify: {item}")] for item in items
    )
    assert len(session.thread("default").turns) == 1  # nothing committed to a thread


def test_the_magic_fills_columns_and_leaves_other_braces_as_typed(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    shell.user_ns["rows"] = [{"name": "Ann", "city": "Oslo"}, {"name": "Bob", "city": "Rome"}]
    shell.run_cell('%%chat --map rows -o answers\n{name} from {city}: {"json": 1} `{name}`') \
        .raise_error()
    assert sorted(_users(emulator)) == [
        'Ann from Oslo: {"json": 1} `{name}`', 'Bob from Rome: {"json": 1} `{name}`',
    ]
    answers = shell.user_ns["answers"]
    assert "Ann from Oslo" in answers[0] and "Bob from Rome" in answers[1]


def test_a_missing_column_fails_before_anything_is_sent(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    shell.user_ns["rows"] = [{"name": "Ann"}]
    message = fails(shell, "%%chat --map rows\nHi {name}, about {topic}")
    assert "{topic} is not a column" in message and "nothing was sent" in message
    assert fails(shell, "%%chat --map nowhere\nHi").startswith("--map: 'nowhere' is not defined")
    shell.user_ns["number"] = 3
    assert "DataFrame, a list of dicts or a list of strings" in fails(
        shell, "%%chat --map number\nHi")
    assert "--vars does not go with --map" in fails(shell, "%%chat --map rows --vars\n{name}")
    assert "--tools does not go with --map" in fails(shell, "%%chat --map rows --tools f\n{name}")
    assert "go with --map DATA" in fails(shell, "%%chat --batch\nHi")
    assert emulator.completions == []


def test_dataframe_in_new_column_out(shell: Any, session: Any, emulator: Emulator) -> None:
    frame = pd.DataFrame({"text": ["great", "awful", "fine"], "stars": [5, 1, 3]})
    shell.user_ns["df"] = frame
    shell.run_cell("%%chat --map df -o label\n{stars} stars: {text}").raise_error()
    assert list(frame.columns) == ["text", "stars", "label"]
    assert [f"“{s} stars: {t}”" in label
            for t, s, label in frame.itertuples(index=False)] == [True] * 3

    copy = yagpt_magic.map("{text}", frame[["text"]], column="again", session=session,
                           progress=False)
    assert list(copy.columns) == ["text", "again"] and "again" not in frame.columns
    from_series = yagpt_magic.map("{item}", frame["text"], session=session, progress=False)
    assert from_series == list(copy["again"])  # the same requests: answered from the cache


def test_a_parse_hook_gives_one_column_per_field(
    session: Any, emulator: Emulator
) -> None:
    """What ``--schema`` plugs into: a per-row parse whose dicts become columns."""
    frame = pd.DataFrame({"text": ["a", "b", "c"]})
    emulator.reply_with('{"label": "pos", "score": 1}', times=2)
    emulator.reply_with("not json")
    got = yagpt_magic.map("{text}", frame, parse=json.loads, session=session,
                          concurrency=1, progress=False)
    assert list(got.columns) == ["text", "label", "score"]
    assert list(got["label"][:2]) == ["pos", "pos"] and list(got["score"][:2]) == [1, 1]
    assert isinstance(got["label"][2], json.JSONDecodeError)  # the bad row holds its error


def test_map_with_a_schema_gives_one_column_per_field(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    """``--map DATA --schema NAME``: each reply is checked; its fields become columns."""
    from yagpt_magic.core.errors import InvalidReply

    shell.run_cell(
        "import pydantic\n"
        "class Review(pydantic.BaseModel):\n"
        "    label: str\n"
        "    score: int\n"
    ).raise_error()
    shell.user_ns["df"] = pd.DataFrame({"text": ["great", "awful", "fine"]})
    emulator.reply_with('{"label": "pos", "score": 5}')
    emulator.reply_with('{"label": "neg", "score": "low"}')  # fails the schema
    emulator.reply_with('{"label": "mid", "score": 3}')
    shell.run_cell("%%chat --map df --schema Review --concurrency 1\nRate: {text}").raise_error()
    got = shell.user_ns["df"]
    assert list(got.columns) == ["text", "label", "score"]
    assert list(got["label"][[0, 2]]) == ["pos", "mid"] and list(got["score"][[0, 2]]) == [5, 3]
    assert isinstance(got["label"][1], InvalidReply) and "score" in str(got["label"][1])
    assert magics_of(shell).session.thread().turns == []  # --map commits nothing
    # Unscripted, the emulator answers JSON only when the request carries the schema.
    shell.user_ns["more"] = pd.DataFrame({"text": ["ok", "meh"]})
    shell.run_cell("%%chat --map more --schema Review\nRate: {text}").raise_error()
    more = shell.user_ns["more"]
    assert list(more.columns) == ["text", "label", "score"]
    assert all(isinstance(score, int) for score in more["score"])


def test_a_row_that_fails_alone_holds_its_error_and_the_rest_go_on(
    session: Any, emulator: Emulator
) -> None:
    emulator.context_window = 60
    items = ["short one", "word " * 200, "short two"]
    got = yagpt_magic.map("{item}", items, session=session, progress=False)
    assert "“short one”" in got[0] and "“short two”" in got[2]
    assert isinstance(got[1], ServiceError) and "context window" in str(got[1])

    emulator.reply_with("withheld", status="CONTENT_FILTER")
    got = yagpt_magic.map("again {item}", ["x", "y"], session=session, concurrency=1,
                          progress=False)
    assert isinstance(got[0], ContentFiltered) and "“again y”" in got[1]
    # A failed row is not cached: the next run asks for it again, and only for it.
    emulator.reset()
    got = yagpt_magic.map("again {item}", ["x", "y"], session=session, progress=False)
    assert _users(emulator) == ["again x"] and "“again x”" in got[0]


def test_a_failure_that_dooms_every_row_stops_at_once(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.UNAUTHENTICATED, "bad key", method="*", times=1000)
    shell.user_ns["items"] = [f"row {i}" for i in range(200)]
    message = fails(shell, "%%chat --map items --concurrency 4\n{item}")
    assert message.startswith("Authentication failed") and "0 of 200 rows are done" in message
    assert len(emulator.completions) <= 8  # the in-flight ones, not 200


def test_quota_rejections_slow_it_down_instead_of_failing(
    session: Any, emulator: Emulator
) -> None:
    emulator.quota_rps = 20
    emulator.delay = 0.05
    got = yagpt_magic.map("{item}", [f"r{i}" for i in range(120)], session=session,
                          progress=False)
    assert all(isinstance(r, str) for r in got)
    assert emulator.rejected < 0.5 * 120  # a few probes over the quota, not a storm


def test_interrupt_keeps_what_is_done_and_a_rerun_pays_only_the_rest(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    emulator.delay = 0.05
    shell.user_ns["items"] = [f"row {i}" for i in range(120)]
    cell = "%%chat --map items -o out --concurrency 4\n{item}"

    def interrupt_when_half_done() -> None:
        while len(emulator.completions) < 60:
            time.sleep(0.005)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_half_done, daemon=True).start()
    message = fails(shell, cell)
    first = len(emulator.completions)
    assert message.startswith("Interrupted:") and "run the cell again" in message
    time.sleep(0.3)  # anything still in flight would show up now
    assert len(emulator.completions) == first <= 60 + 4

    shell.run_cell(cell).raise_error()
    out = shell.user_ns["out"]
    assert [f"“row {i}”" in text for i, text in enumerate(out)] == [True] * 120
    # Paid once per row, plus at most the requests that were in flight at the interrupt.
    assert 120 <= len(emulator.completions) <= 120 + 4
    assert len(set(_users(emulator))) == 120

    emulator.reset()
    shell.run_cell(cell).raise_error()  # after a restart too: the cache is on disk
    assert emulator.completions == []


def test_a_torn_cache_file_is_not_trusted(tmp_path: Path) -> None:
    from yagpt_magic.bulk.row_cache import RowCache, request_key
    from yagpt_magic.core.backend import Reply, RequestOptions
    from yagpt_magic.core.conversation import Usage

    cache = RowCache(tmp_path)
    key = request_key([{"role": "user", "text": "hi"}], RequestOptions())
    assert key != request_key([{"role": "user", "text": "hi"}], RequestOptions(temperature=0))
    reply = Reply("hello", "final", Usage(1, 2, 0, 3), "gpt://f/yandexgpt/latest", "v")
    cache.put(key, reply)
    assert cache.get(key) == reply and len(cache) == 1
    cache.close()
    path = cache.path  # one SQLite file: a write is a transaction (tests/bulk/test_row_cache.py)
    path.write_bytes(path.read_bytes()[:10])  # what a write without rename could leave
    for companion in tmp_path.glob("rows.sqlite-*"):
        companion.unlink()
    assert RowCache(tmp_path).get(key) is None
    assert not list(tmp_path.rglob(".tmp-*"))  # put leaves no temporary file behind


def test_an_unreachable_service_stops_the_job_with_one_line(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    emulator.stop()
    shell.user_ns["items"] = [f"row {i}" for i in range(50)]
    message = fails(shell, "%%chat --map items\n{item}")
    assert "unreachable" in message and "0 of 50 rows are done and kept" in message


def test_interrupt_in_a_real_kernel_with_the_widget_bar(emulator: Emulator) -> None:
    """Kernel -> Interrupt during a job with the notebook's bar: one line, rows kept."""
    from ..conftest import emulator_env
    from ..kernel import Kernel

    emulator.delay = 0.05
    with Kernel(emulator_env(emulator)) as kernel:
        setup = kernel.run(
            "%load_ext yagpt_magic\nimport tempfile\n"
            "%config ChatMagics.cache_dir = tempfile.mkdtemp()\n"
            "items = [f'row {i}' for i in range(150)]"
        )
        assert setup.ok, setup.error
        cell = "%%chat --map items -o out --concurrency 4\n{item}"
        msg_id = kernel.send(cell)
        while len(emulator.completions) < 50:
            time.sleep(0.005)
        kernel.manager.interrupt_kernel()
        stopped = kernel.collect(msg_id, timeout=20)
        assert not stopped.ok and "Interrupted:" in stopped.error
        assert "rows are done and kept" in stopped.error
        first = len(emulator.completions)

        again = kernel.run(cell + "\n")
        assert again.ok, again.error
        assert 150 <= len(emulator.completions) <= 150 + 4
        assert len(emulator.completions) - first == 150 - int(
            re.search(r"(\d+) from the cache", again.text).group(1))  # type: ignore[union-attr]


# -- the attacker's cases: a row's trouble stays in its row, replies never replace data --


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_a_row_that_cannot_be_sent_holds_its_error_and_the_rest_go(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    from yagpt_magic.core.errors import UsageProblem

    shell.user_ns["rows"] = [{"text": "fine"}, {"text": "bad \udc80 byte"},
                             {"text": _Unprintable()}, {"text": "also fine"}]
    shell.run_cell("%%chat --map rows -o out\nSay: {text}").raise_error()
    out = shell.user_ns["out"]
    assert "“Say: fine”" in out[0] and "“Say: also fine”" in out[3]
    assert isinstance(out[1], UsageProblem) and "unpaired surrogate" in str(out[1])
    assert isinstance(out[2], UsageProblem) and "RuntimeError" in str(out[2])
    assert sorted(_users(emulator)) == ["Say: also fine", "Say: fine"]


def test_reply_fields_never_replace_the_users_columns(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "id": [1, 2]})
    shell.user_ns["df"] = frame
    emulator.reply_with('{"text": "OVERWRITTEN", "id": "pwn", "label": "pos"}', times=2)
    shell.run_cell("%%chat --map df --json\nRate: {text}").raise_error()
    got = shell.user_ns["df"]
    assert list(got["text"]) == ["a", "b"] and list(got["id"]) == [1, 2]
    assert list(got["reply_text"]) == ["OVERWRITTEN"] * 2 and list(got["label"]) == ["pos"] * 2
    # Run again: the columns it wrote are its own and are replaced, not prefixed again.
    emulator.reply_with('{"text": "AGAIN", "id": "pwn", "label": "neg"}', times=2)
    shell.run_cell("%%chat --map df --json --fresh\nRate: {text}").raise_error()
    again = shell.user_ns["df"]
    assert list(again.columns) == ["text", "id", "reply_text", "reply_id", "label"]
    assert list(again["label"]) == ["neg"] * 2 and list(again["text"]) == ["a", "b"]
    # -o naming one of the user's own columns is refused before anything is sent.
    emulator.reset()
    message = fails(shell, "%%chat --map df -o text\nRate: {text}")
    assert "already has a column 'text'" in message and "nothing was sent" in message
    assert emulator.completions == []


def test_a_reply_with_absurdly_many_fields_is_an_error_in_its_row(
    session: Any, emulator: Emulator
) -> None:
    from yagpt_magic.core.errors import InvalidReply

    frame = pd.DataFrame({"text": ["a", "b", "c"]})
    emulator.reply_with('{"label": "pos", "self": 1, "": 2, "0": 3}')
    emulator.reply_with("MANY")  # (a reply that long would pass max_tokens: parse makes it)
    emulator.reply_with('{"label": "neg", "self": 4, "": 5, "0": 6}')

    def parse(text: str) -> Any:
        return {f"k{i}": i for i in range(20_000)} if text == "MANY" else json.loads(text)

    started = time.monotonic()
    got = yagpt_magic.map("{text}", frame, parse=parse, session=session, concurrency=1,
                          progress=False)
    assert time.monotonic() - started < 10  # not minutes of one column at a time
    assert list(got.columns) == ["text", "label", "self", "", "0"]  # `self` is a column too
    assert list(got["label"][[0, 2]]) == ["pos", "neg"] and list(got["self"][[0, 2]]) == [1, 4]
    assert isinstance(got["label"][1], InvalidReply) and "20,000 fields" in str(got["label"][1])


def test_after_an_interrupt_the_answered_rows_are_in_the_result(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    emulator.delay = 0.05
    frame = pd.DataFrame({"text": [f"row {i}" for i in range(100)]})
    shell.user_ns["df"] = frame

    def interrupt_when_some_are_done() -> None:
        while len(emulator.completions) < 30:
            time.sleep(0.005)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_some_are_done, daemon=True).start()
    message = fails(shell, "%%chat --map df -o label --concurrency 4\n{text}")
    assert message.startswith("Interrupted:")
    labels = list(frame["label"])
    answered = [i for i, label in enumerate(labels) if isinstance(label, str)]
    assert 20 <= len(answered) < 100
    assert sum(1 for label in labels if pd.isna(label)) == 100 - len(answered)  # the rest empty
    assert all(f"“row {i}”" in labels[i] for i in answered)


def test_the_cache_never_crosses_services(
    shell: Any, session: Any, emulator: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    """Two emulators on two ports are two services: one's answers never stand in for the
    other's, and --fresh sends every row again."""
    shell.user_ns["items"] = ["one", "two"]
    emulator.reply_with("FIRST SERVICE", times=2)
    shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
    assert shell.user_ns["out"] == ["FIRST SERVICE"] * 2
    with Emulator(api_key=emulator.api_key) as other:
        clean_env.setenv("YC_API_ENDPOINT", other.address)
        other.reply_with("SECOND SERVICE", times=2)
        shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
        assert shell.user_ns["out"] == ["SECOND SERVICE"] * 2 and len(other.completions) == 2
        shell.run_cell("%%chat --map items -o out\n{item}").raise_error()  # now cached there
        assert len(other.completions) == 2
        other.reply_with("FRESH", times=2)
        shell.run_cell("%%chat --map items -o out --fresh\n{item}").raise_error()
        assert shell.user_ns["out"] == ["FRESH"] * 2 and len(other.completions) == 4
    clean_env.setenv("YC_API_ENDPOINT", emulator.address)
    emulator.reset()
    shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
    assert shell.user_ns["out"] == ["FIRST SERVICE"] * 2 and emulator.completions == []


def test_a_bad_cache_folder_is_one_line_before_anything_is_sent(
    shell: Any, session: Any, emulator: Emulator, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(a_file)!r}").raise_error()
    shell.user_ns["items"] = ["one", "two"]
    message = fails(shell, "%%chat --map items\n{item}")
    assert "is a file, not a folder" in message and "Nothing was sent" in message
    assert emulator.completions == []


def test_chat_cache_says_where_and_how_big_and_clear_empties_it(
    shell: Any, session: Any, emulator: Emulator, tmp_path: Path, capsys: Any
) -> None:
    import stat

    folder = tmp_path / "rows"
    shell.user_ns["items"] = [f"row {i}" for i in range(5)]
    shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
    table = shell.run_line_magic("chat", "cache")
    shown = dict(table.rows)
    assert shown["where"] == str(folder / "rows.sqlite") and shown["rows"] == "5"
    assert "KB" in shown["size"]
    # Prompts and replies: the user's alone.
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "rows.sqlite").stat().st_mode) == 0o600

    shell.run_line_magic("chat", "cache clear")
    assert "5 rows forgotten" in capsys.readouterr().out
    assert dict(shell.run_line_magic("chat", "cache").rows)["rows"] == "0"
    emulator.reset()
    shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
    assert len(emulator.completions) == 5  # nothing kept: every row is sent again


# -- at the service's documented limits (the emulator's, through the real SDK) --------


def _timed_job(session: Any, emulator: Emulator, rows: int,
               concurrency: int | None = None) -> tuple[float, int]:
    """Seconds for ``rows`` rows of --map, and the requests the service refused meanwhile."""
    emulator.reply_with("ok " * 10, times=10**6)  # a fixed short reply: a fixed service time
    yagpt_magic.map("{item}", ["warm up"], session=session, progress=False)  # the SDK's setup
    rejected_before = emulator.rejected
    started = time.monotonic()
    got = yagpt_magic.map("{item}", [f"row {i} of a timed job" for i in range(rows)],
                          session=session, progress=False, concurrency=concurrency)
    took = time.monotonic() - started
    assert all(isinstance(r, str) for r in got)  # nothing lost, no refusal became an error
    return took, emulator.rejected - rejected_before


@pytest.mark.parametrize("limit", [3, 10])
def test_at_a_concurrency_limit_it_runs_near_the_limits_throughput(
    session: Any, emulator: Emulator, limit: int
) -> None:
    """The documented shape: a concurrency limit and a lognormal service time. The bar
    here is lower than the benchmark's (a shared, loaded test machine: 0.70 was missed at
    a load average of 20), yet well above a sequential loop's 1/limit; figure 9 measures
    the real share (>= 0.95) in a benchmark run."""
    from yagpt_magic.emulator import Limits, ServiceTime

    emulator.limits = Limits(concurrent_generations=limit)
    model = ServiceTime(first_token=0.18, per_token=0.002, sigma=0.5, seed=limit)
    emulator.service_time = model
    mean = model.median(10) * math.exp(model.sigma ** 2 / 2)
    rows = 40 * limit
    took, rejected = _timed_job(session, emulator, rows)
    share = rows / took / (limit / mean)
    assert share >= 0.5, f"{share:.2f} of the limit's throughput"
    assert rejected <= 0.05 * rows + 10  # the first overshoot, then a few probes


def test_at_a_rate_limit_it_paces_the_starts(session: Any, emulator: Emulator) -> None:
    from yagpt_magic.emulator import Limits

    emulator.limits = Limits.off()
    emulator.quota_rps = 40
    emulator.delay = 0.02  # the window alone cannot hold 40/s: it would send ~500/s
    took, rejected = _timed_job(session, emulator, 200, concurrency=16)
    assert 200 / took >= 0.7 * 40
    # The first overshoot (a bucket's burst: at most the 16 in flight), then few.
    assert rejected <= 16 + 0.05 * 200
