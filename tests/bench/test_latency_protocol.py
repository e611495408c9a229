import time

import pytest

from optieval.bench.latency import MeasureSettings, measure
from optieval.errors import InputError


def test_required_samples_derived_from_target_percentile() -> None:
    # 1 - 0.99^n >= 0.95 first holds at n = 299; the median needs 6 (1 - 2 * 0.5^n >= 0.95).
    assert MeasureSettings().required_samples() == 299
    assert MeasureSettings(target_percentile=50).required_samples() == 6
    assert MeasureSettings(min_samples=7).required_samples() == 299  # raised, never lowered
    assert MeasureSettings(min_samples=500).required_samples() == 500
    assert MeasureSettings(confidence=0.99).required_samples() == 459


def test_measure_meets_both_minimums() -> None:
    calls = []
    settings = MeasureSettings(warmup_s=0.0, warmup_iters=3, duration_s=0.05, min_samples=50)
    m = measure([lambda: calls.append(1)], settings)
    assert m.warmup_iterations >= 3
    assert len(m.times_ns) >= 50
    assert m.elapsed_s >= 0.05
    assert m.reached_minimums
    assert len(calls) == 1 + m.warmup_iterations + len(m.times_ns)


def test_measure_stops_at_max_duration() -> None:
    settings = MeasureSettings(
        warmup_s=0.0, warmup_iters=0, duration_s=0.05, min_samples=10_000, max_duration_s=0.1
    )
    m = measure([lambda: time.sleep(0.01)], settings)
    assert m.elapsed_s < 0.5
    assert not m.reached_minimums


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": -1}, "duration_s"),
        ({"min_samples": 0}, "min_samples"),
        ({"warmup_s": -1}, "warmup_s"),
        ({"max_duration_s": 1, "duration_s": 2}, "max_duration_s"),
        ({"target_percentile": 100}, "target_percentile"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.5}, "confidence"),
    ],
)
def test_bad_settings_name_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(InputError, match=option):
        MeasureSettings(**kwargs).validate()
