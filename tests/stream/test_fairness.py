"""Fair shares of analysis: the scheduler's order, the fair level, the fairness figure and
the overloaded state (stream/fairness.py). The end-to-end spec, ten real cameras against
the real detector, is in test_live.py."""

from __future__ import annotations

import pytest

from fiqa_stream.stream.fairness import RecentCount, SourceShare, fair_level, fairness, overloaded


def test_a_recent_count_forgets_what_is_older_than_its_window() -> None:
    recent = RecentCount(5.0, now=0.0)
    for second in range(10):
        recent.update(float(second), total=10 * (second + 1))
    assert recent.count() == 50  # seconds 5..9; the sample at 4.0 is the base
    assert recent.per_second(9.0) == 10.0


def test_a_young_window_measures_over_the_time_since_the_start() -> None:
    recent = RecentCount(5.0, now=100.0)
    recent.update(101.0, total=5)
    assert recent.per_second(101.0) == 5.0


def test_the_least_analysed_source_goes_first_and_equals_take_turns() -> None:
    busy, idle = SourceShare(0.0), SourceShare(0.0)
    for moment in (0.1, 0.2, 0.3):
        busy.take(moment)
    idle.take(0.3)
    assert sorted([busy, idle], key=SourceShare.priority)[0] is idle
    first, second = SourceShare(0.0), SourceShare(0.0)
    first.take(1.0)
    second.take(2.0)
    # Equal counts: the one served longest ago is next, whatever the list order.
    assert sorted([second, first], key=SourceShare.priority)[0] is first


def test_a_source_offers_what_it_analysed_and_what_it_lost() -> None:
    share = SourceShare(0.0)
    for tenth in range(1, 11):
        share.take(tenth / 10)
    share.observe(1.0, dropped=15)
    assert share.analysed_rate(1.0) == pytest.approx(10.0)
    assert share.offered_rate(1.0) == pytest.approx(25.0)


def test_the_fair_level_gives_small_sources_all_they_offer_and_splits_the_rest() -> None:
    assert fair_level([5, 5, 5, 5], 10) == 2.5
    assert fair_level([1, 5, 5], 7) == 3.0  # the 1-frame/s camera gets its 1, the others 3 each
    assert fair_level([2, 3], 10) == 3.0  # enough for everyone: each gets all it offers


def test_fairness_is_the_worst_source_against_its_fair_share() -> None:
    assert fairness([2.5, 2.5, 2.5, 2.5], [5, 5, 5, 5]) == 1.0
    assert fairness([4.9, 4.9, 4.9, 4.9, 0.4, 0.0], [5] * 6) == 0.0  # the old order bias: one starved
    assert fairness([1.0, 3.0, 3.0], [1, 5, 5]) == 1.0  # a low ceiling is not unfairness
    assert fairness([2.0, 4.0], [5, 5]) == pytest.approx(2.0 / 3.0)  # min over mean with equal ceilings
    assert fairness([], []) == 1.0


def test_overloaded_starts_past_a_tenth_lost_and_ends_below_a_twentieth() -> None:
    assert not overloaded(95, 100, was=False)
    assert overloaded(85, 100, was=False)
    assert overloaded(93, 100, was=True)  # within the gap: stays as it was
    assert not overloaded(93, 100, was=False)
    assert not overloaded(97, 100, was=True)
    assert not overloaded(0, 0, was=True)  # nothing offered: nothing to keep up with
