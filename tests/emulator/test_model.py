"""The execution model in-process: pools, throttle reasons, scaling buckets, reclaim, retire."""

from __future__ import annotations

from pytest_lambda_slo.emulator.config import parse_function_spec
from pytest_lambda_slo.emulator.model import (
    ACCOUNT_LIMIT,
    RESERVED_LIMIT,
    SCALING_LIMIT,
    Invocation,
    Model,
)
from pytest_lambda_slo.emulator.settings import EmulatorConfig


def make(*specs: str, **options) -> Model:
    functions = tuple(parse_function_spec(s) for s in specs)
    return Model(EmulatorConfig(functions=functions, **options), now=0.0)


def test_one_environment_serves_one_request_at_a_time():
    model = make("f")
    fn = model.functions["f"]
    first = model.acquire(fn, 0.0)
    second = model.acquire(fn, 0.0)
    assert isinstance(first, Invocation) and isinstance(second, Invocation)
    assert first.cold and second.cold and fn.environments == 2
    model.release(first, 0.1)
    third = model.acquire(fn, 0.2)
    assert isinstance(third, Invocation) and not third.cold
    assert fn.environments == 2 and fn.busy == 2


def test_reserved_limit_gives_reserved_reason():
    model = make("f:reserved=2")
    fn = model.functions["f"]
    held = [model.acquire(fn, 0.0) for _ in range(2)]
    assert all(isinstance(h, Invocation) for h in held)
    assert model.acquire(fn, 0.0) == RESERVED_LIMIT
    model.release(held[0], 0.0)
    assert isinstance(model.acquire(fn, 0.0), Invocation)


def test_unreserved_pool_is_account_minus_others_reserved():
    model = make("hog:reserved=7", "a", "b", account_concurrency=10)
    assert model.unreserved_limit == 3
    a, b = model.functions["a"], model.functions["b"]
    results = [model.acquire(a, 0.0), model.acquire(b, 0.0), model.acquire(a, 0.0)]
    assert all(isinstance(r, Invocation) for r in results)
    assert model.acquire(b, 0.0) == ACCOUNT_LIMIT
    model.set_reserved(model.functions["hog"], None, 0.0)
    assert model.unreserved_limit == 10
    assert isinstance(model.acquire(b, 0.0), Invocation)


def test_continuous_scaling_refills_tokens_over_time():
    model = make("f", account_concurrency=5000)
    fn = model.functions["f"]
    for _ in range(1000):
        assert isinstance(model.acquire(fn, 0.0), Invocation)
    assert model.acquire(fn, 0.0) == SCALING_LIMIT
    # 100 new environments per second: 0.5 s later there are 50 tokens.
    got = [model.acquire(fn, 0.5) for _ in range(60)]
    assert sum(isinstance(g, Invocation) for g in got) == 50


def test_legacy_scaling_burst_then_500_per_minute():
    model = make("f", scaling="legacy", burst=20, account_concurrency=5000)
    fn = model.functions["f"]
    got = [model.acquire(fn, 0.0) for _ in range(25)]
    assert sum(isinstance(g, Invocation) for g in got) == 20
    later = [model.acquire(fn, 6.0) for _ in range(100)]  # 6 s at 500/min = 50 more
    assert sum(isinstance(g, Invocation) for g in later) == 50


def test_idle_environments_are_reclaimed():
    model = make("f:idle=10s")
    fn = model.functions["f"]
    inv = model.acquire(fn, 0.0)
    model.release(inv, 1.0)
    model.reclaim(5.0)
    assert fn.environments == 1
    model.reclaim(11.5)
    assert fn.environments == 0
    again = model.acquire(fn, 12.0)
    assert isinstance(again, Invocation) and again.cold


def test_stale_environment_is_not_reused_even_before_the_sweep():
    model = make("f:idle=10s")
    fn = model.functions["f"]
    model.release(model.acquire(fn, 0.0), 0.0)
    inv = model.acquire(fn, 20.0)
    assert isinstance(inv, Invocation) and inv.cold and fn.environments == 1


def test_retire_all_makes_next_invocation_cold_and_drops_busy_on_release():
    model = make("f")
    fn = model.functions["f"]
    warm_one = model.acquire(fn, 0.0)
    busy_one = model.acquire(fn, 0.0)
    model.release(warm_one, 0.0)
    fn.retire_all()
    assert fn.environments == 1  # only the busy one is left
    model.release(busy_one, 0.1)
    assert fn.environments == 0 and not fn.idle
    assert model.acquire(fn, 0.2).cold


def test_unhandled_error_destroys_the_environment():
    model = make("f")
    fn = model.functions["f"]
    model.release(model.acquire(fn, 0.0), 0.0, destroy=True)
    assert fn.environments == 0
    assert model.acquire(fn, 0.1).cold
