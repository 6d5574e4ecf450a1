"""Per-interval data: totals, exact merge, doubling, JSON round trip, exceedances."""

from __future__ import annotations

import json
import random

import pytest
from hdrh.histogram import HdrHistogram

from pytest_lambda_slo._results.recorder import (
    Measurements,
    Outcome,
    Timeseries,
    bucket_floor,
    bucket_top,
)

HIGHEST_US = 31_000_000
S = 1_000_000_000  # one second in ns
START = 5 * S


def _outcomes(count: int, seed: int, span_s: float = 20.0) -> list[Outcome]:
    rng = random.Random(seed)
    outcomes = []
    for i in range(count):
        done = START + int(rng.uniform(0, span_s) * S)
        roll = rng.random()
        latency = int(rng.lognormvariate(18.4, 0.5))  # about 100 ms in ns
        if roll < 0.05:
            outcome = Outcome("throttle", latency, status=429, done_ns=done, in_flight=3)
        elif roll < 0.08:
            outcome = Outcome("error", None, error_kind="connect_refused", done_ns=done)
        elif roll < 0.10:
            outcome = Outcome("error", 30 * S, error_kind="timeout", done_ns=done, in_flight=9)
        else:
            outcome = Outcome(
                "ok", latency, status=200, cold=i % 50 == 0, done_ns=done, in_flight=i % 7
            )
        outcomes.append(outcome)
    return outcomes


def _measure(outcomes: list[Outcome], start_ns: int = START) -> Measurements:
    measurements = Measurements(highest_us=HIGHEST_US)
    measurements.mark_release(start_ns, 1_764_625_000.25)
    for outcome in outcomes:
        measurements.record(outcome)
    return measurements


def _ts(measurements: Measurements) -> Timeseries:
    assert measurements.timeseries is not None
    return measurements.timeseries


def test_bucket_edges_agree_with_hdrh() -> None:
    hdr = HdrHistogram(1, HIGHEST_US, 3)
    rng = random.Random(3)
    values = list(range(1, 10_000)) + [rng.randrange(1, HIGHEST_US) for _ in range(20_000)]
    for value in values:
        assert bucket_floor(value) == hdr.get_lowest_equivalent_value(value)
        assert bucket_top(value) == hdr.get_highest_equivalent_value(value)


def test_counts_sum_to_the_totals() -> None:
    measurements = _measure(_outcomes(3000, seed=1))
    ts = _ts(measurements)
    assert len(ts) == 20
    assert sum(ts.sent) == measurements.count == 3000
    assert sum(ts.ok) == measurements.ok
    assert sum(ts.throttled) == measurements.throttles
    assert sum(ts.errors) == measurements.errors
    assert sum(ts.cold_starts) == measurements.cold_starts
    assert {k: sum(v) for k, v in ts.error_kinds.items()} == dict(measurements.error_kinds)
    assert max(ts.in_flight_max) == 9
    # the interval histograms add up to the run's non-throttled latencies, bucket for bucket
    combined = HdrHistogram(1, HIGHEST_US, 3)
    for i in range(len(ts)):
        combined.add(ts.hist(i))
    expected = HdrHistogram(1, HIGHEST_US, 3)
    expected.add(measurements.hist("all").hdr)
    served = sum(ts.served(i) for i in range(len(ts)))
    assert served == measurements.hist("all").count - measurements.hist("throttled").count
    for value, count in _bucket_counts(measurements.hist("throttled").hdr).items():
        expected.counts[expected.get_counts_array_index(value)] -= count
    assert _bucket_counts(combined) == {k: c for k, c in _bucket_counts(expected).items() if c}


def _bucket_counts(hdr: HdrHistogram) -> dict[int, int]:
    return {
        int(hdr.get_value_from_index(i)): int(hdr.counts[i])
        for i in range(len(hdr.counts))
        if hdr.counts[i]
    }


def test_interval_is_the_completion_interval() -> None:
    ts = Timeseries(HIGHEST_US)
    ts.start(START, 0.0)
    for offset_ns in (0, S - 1, S, 3 * S + 5, -10):  # before the release: interval 0
        ts.record(Outcome("ok", 1_000_000, done_ns=START + offset_ns))
    assert ts.sent == [3, 1, 0, 1]
    assert ts.t_s == [0.0, 1.0, 2.0, 3.0]


def test_outcome_without_done_ns_is_timed_when_recorded() -> None:
    ts = Timeseries(HIGHEST_US)
    ts.record(Outcome("ok", 2_000_000))  # no release given either: this starts the clock
    ts.record(Outcome("ok", 3_000_000))
    assert ts.sent == [2] and ts.start_ns is not None and ts.start_epoch_s is not None


def test_merge_equals_a_single_recording_bucket_for_bucket() -> None:
    outcomes = _outcomes(2000, seed=2)
    single = _ts(_measure(outcomes))
    merged = Measurements(highest_us=HIGHEST_US)
    for part in (outcomes[0::2], outcomes[1::2]):  # two workers released together
        worker = _measure(part)
        merged.merge(Measurements.from_dict(json.loads(json.dumps(worker.to_dict()))))
    left, right = _ts(merged).to_dict(), single.to_dict()
    in_flight = left.pop("in_flight_max"), right.pop("in_flight_max")
    assert left == right
    assert all(a >= b for a, b in zip(*in_flight, strict=True))  # the sum bounds the max
    assert [h.get_total_count() for h in map(_ts(merged).hist, range(20))] == [
        h.get_total_count() for h in map(single.hist, range(20))
    ]


def test_a_worker_released_a_little_later_lands_on_the_same_intervals() -> None:
    outcomes = _outcomes(1000, seed=3)
    merged = _measure(outcomes[0::2])
    merged.merge(_measure(outcomes[1::2], START + 3_000_000))  # its clock starts 3 ms later
    ts = _ts(merged)
    assert ts.start_ns == START and len(ts) == 20 and sum(ts.sent) == 1000


def test_merge_aligns_on_the_release_and_folds_finer_intervals() -> None:
    early = Timeseries(HIGHEST_US)
    early.start(START, 100.0)
    early.record(Outcome("ok", 1_000_000, done_ns=START + S // 2))
    late = Timeseries(HIGHEST_US, interval_s=0.5)
    late.start(START + 2 * S, 102.0)
    for offset in (0, S // 2, S):  # 0.5 s intervals 0, 1, 2 of the later release
        late.record(Outcome("ok", 1_000_000, done_ns=START + 2 * S + offset))
    early.merge(late)
    assert early.interval_s == 1.0 and early.sent == [1, 0, 2, 1]
    later_first = Timeseries(HIGHEST_US)
    later_first.start(START + 2 * S, 102.0)
    later_first.record(Outcome("ok", 1_000_000, done_ns=START + 2 * S))
    starts_first = Timeseries(HIGHEST_US)
    starts_first.start(START, 100.0)
    starts_first.record(Outcome("ok", 1_000_000, done_ns=START))
    later_first.merge(starts_first)
    assert later_first.sent == [1, 0, 1] and later_first.start_ns == START
    assert later_first.start_epoch_s == 100.0


def test_doubling_keeps_totals_and_equals_recording_at_the_coarse_interval() -> None:
    outcomes = _outcomes(3000, seed=4, span_s=100.0)
    capped = Timeseries(HIGHEST_US, cap=8)
    coarse = Timeseries(HIGHEST_US, interval_s=16.0)
    for ts in (capped, coarse):
        ts.start(START, 0.0)
        for outcome in outcomes:
            ts.record(outcome)
    assert capped.interval_s == 16.0 and len(capped) == 7 <= 8
    assert sum(capped.sent) == 3000
    assert capped.to_dict() == coarse.to_dict()


def test_plain_oks_land_in_their_interval_in_any_order_through_doubling_and_merge() -> None:
    # record_ok reuses the interval it found last while completions stay inside it.
    rng = random.Random(7)
    dones = [START + int(rng.uniform(-0.5, 40.0) * S) for _ in range(3000)]
    dones[1000:2000] = sorted(dones[1000:2000])  # a run's completions come mostly in order
    fast = Measurements(highest_us=HIGHEST_US, timeseries=Timeseries(HIGHEST_US, cap=8))
    fast.mark_release(START, 100.0)
    reference = Timeseries(HIGHEST_US, cap=8)
    reference.start(START, 100.0)
    # Released 16 s before, in 16 s intervals: the merge shifts the rows and doubles them.
    earlier = Timeseries(HIGHEST_US, interval_s=16.0)
    earlier.start(START - 16 * S, 84.0)
    earlier.record(Outcome("ok", 1_000_000, done_ns=START - 2 * S))
    dones[2499] = dones[2500] = START + 9 * S  # the 8 s interval 1, then the 16 s interval 0
    for i, done in enumerate(dones):
        if i == 2500:
            _ts(fast).merge(earlier)
            reference.merge(earlier)
        fast.record_ok(200, 40_000_000 + i * 1000, 16, done, i % 5, 1_000_000)
        reference.record(
            Outcome("ok", 40_000_000 + i * 1000, status=200, done_ns=done, in_flight=i % 5)
        )
    assert _ts(fast).interval_s == 16.0
    assert _ts(fast).to_dict() == reference.to_dict()


def test_json_round_trip_with_overflows_and_empty_intervals() -> None:
    measurements = _measure(_outcomes(500, seed=5, span_s=5.0))
    measurements.record(Outcome("ok", 10**13, done_ns=START + 8 * S))  # beyond the range
    data = json.loads(json.dumps(measurements.to_dict()))
    block = data["timeseries"]
    assert block["histograms"][6] == "" and block["p99_ms"][6] is None  # an empty interval
    assert block["overflows"][8] == 1
    assert block["p50_ms"][0] == pytest.approx(100, rel=0.5)
    again = Measurements.from_dict(data)
    assert again.to_dict() == measurements.to_dict()
    assert _ts(again).exceedances(1e7, "lo")[8] == (1, 1)  # an overflow is surely slower


@pytest.mark.parametrize("threshold", [50_000, 99_999, 100_000.5, 150_000, 400_000, 30e6])
def test_exceedances_agree_with_brute_force(threshold: float) -> None:
    outcomes = _outcomes(2000, seed=6)
    ts = _ts(_measure(outcomes))
    hdr = HdrHistogram(1, HIGHEST_US, 3)
    expected: dict[str, list[list[int]]] = {"lo": [], "hi": []}
    for side in ("lo", "hi"):
        expected[side] = [[0, 0] for _ in range(len(ts))]
    for outcome in outcomes:
        if outcome.latency_ns is None or outcome.kind == "throttle":
            continue
        assert outcome.done_ns is not None
        i = (outcome.done_ns - START) // S
        value = outcome.latency_ns // 1000
        for side, edge in (
            ("lo", hdr.get_lowest_equivalent_value(value)),
            ("hi", hdr.get_highest_equivalent_value(value)),
        ):
            expected[side][i][0] += 1
            expected[side][i][1] += edge > threshold
    for side in ("lo", "hi"):
        assert ts.exceedances(threshold, side) == [tuple(x) for x in expected[side]]  # type: ignore[arg-type]


def test_exceedances_rejects_an_unknown_side() -> None:
    with pytest.raises(ValueError, match="'lo' or 'hi'"):
        Timeseries(HIGHEST_US).exceedances(1000, "mid")  # type: ignore[arg-type]
