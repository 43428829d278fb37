"""The load test's arithmetic (bench/load.py): percentiles, growth per 10k, the request mix."""
from __future__ import annotations

import os

import pytest

from bench.load import growth_per, latency_summary, percentile, request_mix, rss_mb


def test_percentile_interpolates_between_the_nearest_ranks():
    # GIVEN ten sorted samples 1..10
    samples = [float(n) for n in range(1, 11)]
    # THEN the ends are the extremes, the median falls between 5 and 6, p99 just below 10
    assert percentile(samples, 0.0) == 1.0
    assert percentile(samples, 1.0) == 10.0
    assert percentile(samples, 0.5) == pytest.approx(5.5)
    assert percentile(samples, 0.99) == pytest.approx(9.91)


def test_percentile_of_one_sample_is_that_sample_and_of_none_an_error():
    assert percentile([4.2], 0.99) == 4.2
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_latency_summary_sorts_its_samples():
    summary = latency_summary([30.0, 10.0, 20.0])
    assert summary == {"n": 3, "p50_ms": 20.0, "p99_ms": 29.8, "max_ms": 30.0}
    assert latency_summary([]) == {"n": 0}


def test_growth_per_is_the_least_squares_slope_scaled():
    # GIVEN RSS growing 40 MB per 10,000 with noise around the line
    points = [(0, 500.0), (10_000, 541.0), (20_000, 579.0), (30_000, 620.0)]
    assert growth_per(points, 10_000) == pytest.approx(39.8)
    # AND a flat line grows by nothing; one point says nothing
    assert growth_per([(0, 100.0), (10_000, 100.0)], 10_000) == 0.0
    assert growth_per([(0, 100.0)], 10_000) is None
    assert growth_per([(5, 100.0), (5, 120.0)], 10_000) is None


def test_request_mix_interleaves_the_routes_by_weight():
    assert request_mix([1, 2, 1]) == [0, 1, 2, 1]
    assert request_mix([2, 0, 1]) == [0, 2, 0]
    assert sorted(request_mix([3, 1, 2])) == [0, 0, 0, 1, 2, 2]
    for bad in ([0, 0, 0], [1, 1], [1, -1, 1]):
        with pytest.raises(ValueError):
            request_mix(bad)


def test_rss_of_this_process_is_read_and_of_a_gone_one_is_none():
    assert rss_mb(os.getpid()) > 1
    assert rss_mb(2**22 + 12345) is None
