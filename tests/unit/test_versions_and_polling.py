"""Version policy and wait computation."""

from __future__ import annotations

import pytest
from upgrader.errors import UnsupportedVersionStep
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.versions import (
    CONTROL_PLANE_UPDATE,
    SUPPORTED_VERSIONS,
    KubeVersion,
    OperationTiming,
    validate_step,
)


def test_flagship_step_and_later_steps_are_supported():
    assert validate_step("1.23", "1.24") == (KubeVersion(1, 23), KubeVersion(1, 24))
    assert validate_step("1.30", "1.31")[1] == KubeVersion(1, 31)


@pytest.mark.parametrize(
    ("source", "target"),
    [("1.23", "1.25"), ("1.24", "1.23"), ("1.24", "1.24"), ("1.22", "1.23"), ("1.9", "1.10"), ("2.0", "2.1")],
)
def test_anything_but_one_supported_minor_up_is_refused(source, target):
    with pytest.raises(UnsupportedVersionStep):
        validate_step(source, target)


def test_versions_order_numerically_not_lexically():
    assert KubeVersion.parse("1.29") > KubeVersion.parse("1.23") > KubeVersion(1, 9)
    assert str(KubeVersion.parse("1.23").next_minor()) == "1.24"
    assert SUPPORTED_VERSIONS[0] == "1.23"


def test_adaptive_plan_waits_long_first_then_polls_short():
    plan = WaitPlan.for_operation(CONTROL_PLANE_UPDATE, Settings())
    assert plan.first_wait() == 420
    assert plan.next_wait(420) == 20


def test_fixed_plan_is_the_baseline_everywhere():
    plan = WaitPlan.for_operation(
        CONTROL_PLANE_UPDATE, Settings(poll_strategy="fixed", fixed_poll_seconds=30)
    )
    assert plan.first_wait() == 30
    assert plan.next_wait(30) == 30


def test_last_wait_never_overshoots_the_cap():
    plan = WaitPlan(OperationTiming(first_wait_seconds=100, poll_seconds=50, max_wait_seconds=120))
    assert plan.next_wait(100) == 20


def test_settings_come_from_environment_names():
    settings = Settings.load(
        {"TARGET_ROLE_NAME": "role-x", "AWS_MAX_ATTEMPTS": "2", "POLL_STRATEGY": "fixed"}
    )
    assert (settings.target_role_name, settings.aws_max_attempts, settings.poll_strategy) == (
        "role-x",
        2,
        "fixed",
    )


def test_bad_settings_fail_loudly():
    with pytest.raises(ValueError):
        Settings.load({"POLL_STRATEGY": "sometimes"})
