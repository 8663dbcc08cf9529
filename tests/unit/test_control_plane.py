"""Domain: preflight, start and poll of the control plane update, against the in-memory EKS fake."""

from __future__ import annotations

import pytest
from upgrader import control_plane
from upgrader.errors import (
    ClusterNotActive,
    ClusterNotFound,
    ClusterVersionMismatch,
    ControlPlaneUpdateFailed,
    ControlPlaneUpdateTimedOut,
    NodegroupVersionSkew,
    UnsupportedVersionStep,
    UpdateAlreadyInProgress,
)
from upgrader.models import ClusterUpgradeRequest, PollRequest
from upgrader.polling import WaitPlan
from upgrader.versions import CONTROL_PLANE_UPDATE, OperationTiming

from tests.events import load_event
from tests.fakes import FakeEksGateway

PLAN = WaitPlan(CONTROL_PLANE_UPDATE)


@pytest.fixture
def request_() -> ClusterUpgradeRequest:
    return ClusterUpgradeRequest.model_validate(load_event("cluster_upgrade_request"))


@pytest.fixture
def eks() -> FakeEksGateway:
    fake = FakeEksGateway()
    fake.add_cluster("payments-prod", "1.23")
    return fake


def poll_request(request: ClusterUpgradeRequest, update) -> PollRequest:
    return PollRequest(run=request.run, cluster=request.cluster, to_version=request.to_version, update=update)


class TestPreflight:
    def test_active_cluster_on_source_version_passes(self, eks, request_):
        result = control_plane.preflight(eks, request_)
        assert result.cluster_version == "1.23"
        assert result.control_plane_at_target is False
        assert result.adoptable_update_id is None
        assert eks.mutating_calls() == []

    def test_cluster_already_on_target_is_reported_at_target(self, eks, request_):
        # Given a cluster a previous run already upgraded
        eks.clusters["payments-prod"].version = "1.24"
        # Then preflight says there is nothing to do, instead of failing the redrive
        assert control_plane.preflight(eks, request_).control_plane_at_target is True

    def test_version_other_than_declared_is_refused(self, eks, request_):
        eks.clusters["payments-prod"].version = "1.22"
        with pytest.raises(ClusterVersionMismatch) as caught:
            control_plane.preflight(eks, request_)
        assert caught.value.details["actualVersion"] == "1.22"

    @pytest.mark.parametrize("status", ["CREATING", "DELETING", "FAILED", "PENDING"])
    def test_cluster_not_active_is_refused(self, eks, request_, status):
        eks.clusters["payments-prod"].status = status
        with pytest.raises(ClusterNotActive):
            control_plane.preflight(eks, request_)

    def test_missing_cluster_is_named(self, request_):
        with pytest.raises(ClusterNotFound):
            control_plane.preflight(FakeEksGateway(), request_)

    def test_foreign_update_in_progress_blocks(self, eks, request_):
        # Given someone else started a different update (here: to another version)
        eks.update_cluster_version("payments-prod", "1.99", "someone-else")
        with pytest.raises(UpdateAlreadyInProgress) as caught:
            control_plane.preflight(eks, request_)
        assert caught.value.details["updates"][0]["params"] == {"Version": "1.99"}

    def test_our_update_in_progress_is_adoptable(self, eks, request_):
        update = eks.update_cluster_version("payments-prod", "1.24", "earlier-attempt")
        result = control_plane.preflight(eks, request_)
        assert result.adoptable_update_id == update.id
        assert result.control_plane_at_target is False

    def test_two_minor_jump_is_refused_before_any_call(self, eks, request_):
        jump = request_.model_copy(update={"to_version": "1.25"})
        with pytest.raises(UnsupportedVersionStep):
            control_plane.preflight(eks, jump)
        assert eks.calls == []


class TestStartUpdate:
    def test_starts_one_update_with_a_deterministic_token(self, eks, request_):
        update = control_plane.start_update(eks, request_, PLAN)
        assert update.status == "InProgress"
        assert update.adopted is False
        assert update.next_wait_seconds == CONTROL_PLANE_UPDATE.first_wait_seconds
        (_, (name, version, token)) = eks.mutating_calls()[0]
        assert (name, version) == ("payments-prod", "1.24")
        assert token == control_plane.client_request_token(request_)

    def test_a_node_group_behind_the_control_plane_stops_the_update_before_it_starts(self, eks, request_):
        # Given a managed node group still on 1.22 while the control plane runs 1.23
        eks.add_nodegroup("payments-prod", "legacy", version="1.22")
        eks.add_nodegroup("payments-prod", "current")
        # When the update would start, Then nothing is started and the group is named
        with pytest.raises(NodegroupVersionSkew) as stopped:
            control_plane.start_update(eks, request_, PLAN)
        assert stopped.value.details["nodegroups"] == [{"nodegroup": "legacy", "version": "1.22"}]
        assert eks.mutating_calls() == []

    def test_retried_start_adopts_instead_of_starting_twice(self, eks, request_):
        first = control_plane.start_update(eks, request_, PLAN)
        second = control_plane.start_update(eks, request_, PLAN)
        assert second.update_id == first.update_id
        assert second.adopted is True
        assert len(eks.mutating_calls()) == 1

    def test_token_differs_per_cluster_target_and_execution(self, request_):
        tokens = {
            control_plane.client_request_token(request_),
            control_plane.client_request_token(request_.model_copy(update={"to_version": "1.25"})),
            control_plane.client_request_token(
                request_.model_copy(update={"run": request_.run.model_copy(update={"execution_id": "other"})})
            ),
        }
        assert len(tokens) == 3


class TestPollUpdate:
    def test_in_progress_schedules_a_short_poll_and_counts(self, eks, request_):
        started = control_plane.start_update(eks, request_, PLAN)
        polled = control_plane.poll_update(eks, poll_request(request_, started), PLAN)
        assert polled.status == "InProgress"
        assert polled.polls == 1
        assert polled.waited_seconds == CONTROL_PLANE_UPDATE.first_wait_seconds
        assert polled.next_wait_seconds == CONTROL_PLANE_UPDATE.poll_seconds

    def test_successful_update_ends_the_loop(self, eks, request_):
        started = control_plane.start_update(eks, request_, PLAN)
        eks.finish("payments-prod", started.update_id)
        polled = control_plane.poll_update(eks, poll_request(request_, started), PLAN)
        assert polled.status == "Successful"
        assert polled.next_wait_seconds == 0

    @pytest.mark.parametrize("status", ["Failed", "Cancelled"])
    def test_failed_update_raises_with_eks_error_details(self, eks, request_, status):
        started = control_plane.start_update(eks, request_, PLAN)
        eks_errors = ({"errorCode": "IpNotAvailable", "errorMessage": "no IPs", "resourceIds": ["subnet-1"]},)
        eks.finish("payments-prod", started.update_id, status=status, errors=eks_errors)
        with pytest.raises(ControlPlaneUpdateFailed) as caught:
            control_plane.poll_update(eks, poll_request(request_, started), PLAN)
        assert caught.value.details["status"] == status
        assert caught.value.details["errors"] == list(eks_errors)

    def test_poll_cap_stops_the_loop(self, eks, request_):
        plan = WaitPlan(OperationTiming(first_wait_seconds=60, poll_seconds=30, max_wait_seconds=120))
        update = control_plane.start_update(eks, request_, plan)
        update = control_plane.poll_update(eks, poll_request(request_, update), plan)  # waited 60
        update = control_plane.poll_update(eks, poll_request(request_, update), plan)  # waited 90
        assert update.next_wait_seconds == 30
        with pytest.raises(ControlPlaneUpdateTimedOut) as caught:
            control_plane.poll_update(eks, poll_request(request_, update), plan)  # waited 120
        assert caught.value.details["waitedSeconds"] == 120
