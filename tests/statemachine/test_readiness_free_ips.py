"""Free IP addresses are read from the subnets as EC2 reports them; too few block at the gate."""

from __future__ import annotations

from pathlib import Path

from simulator.scenario import load_scenario
from simulator.simulation import Simulation

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "readiness-no-free-ips.yaml"


def test_too_few_free_ips_block_the_cluster_before_any_change():
    # Given a cluster whose subnets have 3 free addresses in all (EKS needs 5)
    scenario = load_scenario(SCENARIO)
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        # When the cluster workflow runs
        run = sim.run_cluster(account, cluster)
        # Then the readiness gate blocks it on GN004, and nothing in the fleet account changed
        assert run.status == "BLOCKED"
        assert run.result.error == "ReadinessBlocked"
        assert "GN004" in str(run.failure()["details"])
        assert sim.faults.mutating_calls() == []
        assert run.after["version"] == "1.23"
