"""``pacing.Pacer`` against a simulated service in virtual time (2,000 rows in ~50 ms).

The figures asked of ``--map`` (SPEC 13): the limit's throughput (in-flight limit /
mean service time, or the rate) with few rejected requests per row, whatever the limit
and whether it is on concurrency or on rate. The emulator runs of the same shape are in
``test_mapping.py`` and benchmark figure 9.
"""

from __future__ import annotations

import statistics

import pytest

from yagpt_magic.bulk.pacing import Pacer

from ..simulated_service import Oracle, Service, simulate

SEEDS = range(8)
ROWS = 2000


def _runs(service: Service, cap: int = 64, rows: int = ROWS) -> list[tuple[float, float, int]]:
    """(throughput share of the limit, rejections per row, final window) per seed."""
    out = []
    for seed in SEEDS:
        result = simulate(service, rows, Pacer(cap), seed=seed)
        out.append((result.throughput / service.limit_throughput(), result.rejected / rows,
                    result.windows[-1]))
    return out


@pytest.mark.parametrize("limit", [1, 3, 10])
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_a_concurrency_limit_is_reached_with_few_rejections(limit: int, sigma: float) -> None:
    runs = _runs(Service(concurrency=limit, mean=1.0, sigma=sigma))
    assert statistics.mean(share for share, _, _ in runs) >= 0.95
    assert max(rejected for _, rejected, _ in runs) <= 0.05
    assert all(window == limit for _, _, window in runs)  # it settles on the limit itself


def test_fifty_in_flight_does_as_well_as_a_client_that_knows_the_limit() -> None:
    """At 50 the end of the job (the slowest of the last 50 replies) costs every client
    ~5%: against a client that keeps exactly 50 in flight from the first request, the
    pacer loses only its slow start from the documented 10."""
    service = Service(concurrency=50, mean=1.0, sigma=0.5)
    ours = [simulate(service, ROWS, Pacer(64), seed=seed) for seed in SEEDS]
    best = [simulate(service, ROWS, Oracle(50), seed=seed) for seed in SEEDS]
    ratio = statistics.mean(o.throughput / b.throughput for o, b in zip(ours, best))
    assert ratio >= 0.97
    assert max(o.rejected for o in ours) / ROWS <= 0.01


@pytest.mark.parametrize(("rate", "mean"), [(40, 0.1), (10, 1.0), (5, 1.0), (20, 0.005)])
def test_a_rate_limit_is_reached_with_few_rejections(rate: float, mean: float) -> None:
    """Including a rate the window cannot express (20/s with 5 ms replies: < 1 in flight)."""
    runs = _runs(Service(rate=rate, mean=mean))
    assert statistics.mean(share for share, _, _ in runs) >= 0.95
    assert max(rejected for _, rejected, _ in runs) <= 0.05


def test_both_limits_at_once_the_tighter_one_holds() -> None:
    runs = _runs(Service(concurrency=10, rate=8.0, mean=1.0))  # the rate is the tighter
    assert statistics.mean(share for share, _, _ in runs) >= 0.95
    assert max(rejected for _, rejected, _ in runs) <= 0.05


def test_the_cap_is_never_exceeded() -> None:
    result = simulate(Service(concurrency=50), 500, Pacer(4), seed=1)
    assert result.peak_in_flight <= 4 and max(result.windows) <= 4
    assert result.rejected == 0


def test_when_another_client_takes_half_the_limit_it_follows_and_comes_back() -> None:
    """The limit drops from 10 to 5 at 60 s and is 10 again at 160 s (another notebook
    of the same folder ran a job meanwhile): the pacer follows it down (window and rate
    together, as such a refusal looks like either) and finds the room again."""
    service = Service(concurrency=10, changes=((60.0, 5), (160.0, 10)))
    for seed in range(4):
        result = simulate(service, 3000, Pacer(64), seed=seed)
        # At the limits: 600 rows in the first 60 s, 500 in the next 100, 1,900 at 10/s.
        assert result.seconds <= 1.3 * (60 + 100 + 190)
        assert result.rejected / 3000 <= 0.05
        assert result.window_at(59) == 10 and result.window_at(result.seconds) == 10


def test_a_small_job_pays_only_the_first_overshoot() -> None:
    """Starting at the documented 10 against a limit of 3 refuses the 7 over it once."""
    result = simulate(Service(concurrency=3), 100, Pacer(32), seed=0)
    assert result.rejected <= 10


def test_refused_requests_are_counted_and_never_lost() -> None:
    pacer = Pacer(32)
    result = simulate(Service(concurrency=2, mean=0.5), 300, pacer, seed=2)
    assert result.rows == 300  # every row answered in the end
    assert pacer.rejections == result.rejected and pacer.attempts == 300 + result.rejected
    assert pacer.in_flight == 0
