"""The generated-load benchmark's arithmetic (bench/generated_stack.py): where the steps
end, how invoices are cut into steps, the per-line ratios, the deadline."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.generated_stack import BenchTimeout, Deadline, Tally, auto_scale, ratios, step_targets, take_lines


def test_step_targets_are_cumulative_fractions_ending_at_the_total():
    # GIVEN the default fractions and 5M lines
    # THEN the steps end at 0.5M, 1M, 2M and 5M
    assert step_targets(5_000_000) == [500_000, 1_000_000, 2_000_000, 5_000_000]
    # AND a total too small for distinct steps keeps only the increasing ones, the last the total
    assert step_targets(3, (0.1, 0.2, 0.4, 1.0)) == [1, 3]


@pytest.mark.parametrize("fractions", [(), (0.5, 0.2, 1.0), (0.2, 0.2, 1.0), (0.0, 1.0), (0.5, 1.5)])
def test_step_targets_refuse_fractions_that_do_not_increase_within_0_1(fractions):
    with pytest.raises(ValueError):
        step_targets(1000, fractions)


def test_step_targets_refuse_a_non_positive_total():
    with pytest.raises(ValueError):
        step_targets(0)


def test_auto_scale_makes_the_total_within_about_a_year():
    assert auto_scale(200_000) == 1.0
    assert auto_scale(5_000_000) == 10.0  # 10 × 541,909 ≥ 5M


def _invoices(sizes):
    return iter([SimpleNamespace(lines=[None] * n, cents=100 * n) for n in sizes])


def test_take_lines_never_splits_an_invoice_and_carries_on_where_it_stopped():
    # GIVEN invoices of 3, 4, 5 and 6 lines
    source, tally = _invoices([3, 4, 5, 6]), Tally()
    # WHEN a first step asks for 5 lines
    first = list(take_lines(source, 5, tally))
    # THEN it ends with the invoice that reaches 5 (3 + 4 = 7 lines), whole
    assert [len(i.lines) for i in first] == [3, 4]
    assert (tally.invoices, tally.lines, tally.cents) == (2, 7, 700)
    # WHEN the next step asks for 12 cumulative lines
    second = list(take_lines(source, 12, tally))
    # THEN it takes the next invoice only (7 + 5 = 12), and the tally is cumulative
    assert [len(i.lines) for i in second] == [5]
    assert (tally.invoices, tally.lines) == (3, 12)


def test_take_lines_stops_when_the_source_runs_out():
    tally = Tally()
    assert len(list(take_lines(_invoices([2, 2]), 100, tally))) == 2
    assert tally.lines == 4


def test_take_lines_checks_the_deadline_before_each_invoice():
    # GIVEN a deadline already past
    clock = iter([0.0, 10.0, 10.0]).__next__
    deadline = Deadline(5.0, clock=clock)
    # THEN taking invoices fails loudly, naming the stage
    with pytest.raises(BenchTimeout, match="the send"):
        list(take_lines(_invoices([1, 1]), 2, Tally(), check=lambda: deadline.left("the send")))


def test_ratios_are_each_steps_cost_per_line_over_the_firsts():
    # GIVEN a first step of 100 lines in 2 s and later steps that cost more per line
    steps = [{"lines": 100, "merge_s": 2.0}, {"lines": 200, "merge_s": 4.0}, {"lines": 300, "merge_s": 12.0},
             {"lines": 0, "merge_s": 1.0}, {"lines": 50, "merge_s": None}]
    # THEN the first is ×1, the same per line ×1, twice per line ×2, undefined ones None
    assert ratios(steps, "merge_s") == [1.0, 1.0, 2.0, None, None]
