"""The outboxes' backoff (domain/outbox.py), shared by transfer callbacks and report mails."""

from __future__ import annotations

import pytest

from bourse.domain.outbox import RetryPolicy


def test_delays_double_from_the_base_up_to_the_cap_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_seconds=30, max_delay_seconds=200)
    assert [policy.delay_after(n) for n in range(1, 7)] == [30, 60, 120, 200, 200, None]


def test_the_defaults_are_the_callbacks_eight_attempts_from_2_s_capped_at_15_min() -> None:
    policy = RetryPolicy()
    assert [policy.delay_after(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 64, 128, None]
    assert RetryPolicy(max_attempts=20).delay_after(15) == 900


def test_one_attempt_means_no_retry() -> None:
    assert RetryPolicy(max_attempts=1).delay_after(1) is None


@pytest.mark.parametrize(("attempts", "base", "cap"), [(0, 1, 1), (3, 0, 1), (3, -1, 1), (3, 10, 5)])
def test_a_policy_that_cannot_work_is_refused(attempts: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(max_attempts=attempts, base_delay_seconds=base, max_delay_seconds=cap)
