"""The pure calculations behind `make bench` (simulator/bench.py): the drain's lower bound and
sequential model, the scan's request accounting, and the generated scan cluster. No timings."""

from __future__ import annotations

import pytest

from simulator import bench
from simulator.bench import BudgetShape, DrainBoundError, DrainShape
from simulator.clock import VirtualClock
from simulator.kube.world import KubeWorld
from simulator.scenario import WorkloadSpec
from simulator.workloads import generated_workloads, manifests


def _shape(*budgets: BudgetShape, unbudgeted: dict[str, int] | None = None, free: int = 1000) -> DrainShape:
    nodes = sorted({n for b in budgets for n in b.pods_by_node} | set(unbudgeted or {}))
    return DrainShape(budgets, unbudgeted or {}, tuple(nodes), free)


def test_a_budget_forces_ceil_of_its_pods_over_what_it_allows():
    assert bench.budget_rounds(pods=10, allowed=3, name="web") == 4
    assert bench.budget_rounds(pods=9, allowed=3, name="web") == 3
    assert bench.budget_rounds(pods=0, allowed=0, name="idle") == 0


def test_a_budget_that_allows_nothing_makes_the_bound_infinite_and_says_so():
    with pytest.raises(DrainBoundError, match="shop/api allows no disruption"):
        bench.budget_rounds(pods=2, allowed=0, name="shop/api")


def test_the_lower_bound_is_the_slowest_budget_s_rounds_minus_one_start_times():
    # Given a budget needing 4 rounds (200 pods, 50 at a time) and one needing 5 (5 pods, 1 at a time)
    shape = _shape(
        BudgetShape("shop/storefront", 50, {"a": 100, "b": 100}),
        BudgetShape("payments/ledger", 1, {"a": 3, "b": 2}),
    )
    # When the bound is computed with pods Ready 18 s after their eviction
    bound = bench.drain_lower_bound(shape, ready_seconds=18)
    # Then the rounds overlap: the slowest budget decides, the last node empties at its 5th round
    assert bound["roundsByBudget"] == {"shop/storefront": 4, "payments/ledger": 5}
    assert (bound["rounds"], bound["seconds"]) == (5, 72.0)


def test_pods_without_a_budget_take_one_round_and_capacity_must_hold_every_pod():
    only_unbudgeted = _shape(unbudgeted={"a": 30})
    assert bench.drain_lower_bound(only_unbudgeted, 15) == {"rounds": 1, "roundsByBudget": {}, "seconds": 0.0}
    too_small = _shape(BudgetShape("shop/web", 5, {"a": 20}), unbudgeted={"a": 11}, free=30)
    with pytest.raises(DrainBoundError, match="room for 30 pod\\(s\\), the drain moves 31"):
        bench.drain_lower_bound(too_small, 15)


def test_the_sequential_model_adds_up_each_node_s_own_rounds():
    # Node a holds 3 ledger pods (1 at a time: 3 rounds), node b 1 (1 round), node c only unbudgeted pods
    shape = _shape(
        BudgetShape("payments/ledger", 1, {"a": 3, "b": 1}),
        BudgetShape("shop/web", 10, {"a": 5, "b": 5}),
        unbudgeted={"c": 4},
    )
    model = bench.sequential_drain_model(shape, ready_seconds=20)
    assert (model["rounds"], model["seconds"]) == (5, 80.0)  # 3 + 1 + 1 rounds, the last at 4 x 20 s


def test_the_request_target_is_one_per_kind_per_page_and_at_least_one_per_kind():
    counts = {"Pod": 10_000, "Deployment": 1_600, "Namespace": 204, "Secret": 0}
    assert bench.expected_list_requests(counts, page_size=500) == 20 + 4 + 1 + 1


def test_requests_per_scan_come_from_identical_scans_or_not_at_all():
    assert bench.requests_per_run(120, 3) == 40
    with pytest.raises(ValueError, match="not one count per scan"):
        bench.requests_per_run(121, 3)


def test_the_drain_shape_is_read_from_the_world_s_budgets_and_pods():
    # Given two old nodes, a budgeted Deployment, an unbudgeted one and a DaemonSet
    clock = VirtualClock()
    world = KubeWorld("c", clock, "1.23")
    world.register_nodes(
        "old",
        ["i-1", "i-2"],
        kubelet_version="v1.23.17-eks-a59e1f0",
        container_runtime="docker://20.10.25",
        instance_type="m5.large",
        labels={bench.NODEGROUP_LABEL: "old"},
        taints=[],
        pods_per_node=20,
        ready_at=clock.now(),
    )
    for spec in (
        {"kind": "Deployment", "name": "web", "replicas": 4, "pdb": {"maxUnavailable": 1}},
        {"kind": "Deployment", "name": "batch", "replicas": 2},
        {"kind": "DaemonSet", "name": "agent"},
    ):
        for manifest in manifests(WorkloadSpec.model_validate({"namespace": "shop", **spec})):
            world.apply(manifest)
    clock.sleep(20)
    world.advance()
    # When the shape is read
    shape = bench.drain_shape(world, "old")
    # Then the budget's allowance and pods, the unbudgeted pods and the room (DaemonSet pods excluded)
    assert [(b.name, b.allowed, b.pods) for b in shape.budgets] == [("shop/web", 1, 4)]
    assert sum(shape.unbudgeted_by_node.values()) == 2
    assert shape.nodes == ("i-1", "i-2") and shape.free_slots == 2 * 20 - 2
    assert bench.drain_lower_bound(shape, 15)["rounds"] == 4


def test_the_scan_cluster_has_the_requested_size():
    specs = generated_workloads(namespaces=200, workloads=2000, pods=10_000)
    assert len(specs) == 2000
    assert len({s.namespace for s in specs}) == 200
    assert sum(s.replicas for s in specs) == 10_000
    assert sum(1 for s in specs if s.pdb) == 500
    with pytest.raises(ValueError):
        generated_workloads(namespaces=10, workloads=5, pods=100)


# -- fleetctl scan's fast construction (performance only): the same data as PyYAML's constructor ------
YAML_SAMPLES = [
    "a: 1\nb: [1, 2, {c: d}]\n",
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "a: &anchor [1, 2]\nb: *anchor\n",
    "t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\n",
    "ints: [0x1F, 0o17, 017, 1_000, -5, 0b101, 190:20:30]\nfloats: [1.5, .inf, .nan, 6.8523015e+5]\n",
    "bools: [yes, No, on, OFF, true]\nnulls: [~, null, , Null]\n",
    "bin: !!binary aGVsbG8=\ns: !!str 123\n",
    "k: v\nk: w\n1: one\n2.5: two\n",
    "rec: &r [*r]\n",
    "? [a, b]\n: v\n",
    "custom: !Ref foo\n",
    "set: !!set {a, b}\n",
]


@pytest.mark.parametrize("text", YAML_SAMPLES)
def test_the_scan_builds_the_same_data_as_pyyaml_or_fails_the_same_way(text):
    import yaml

    from fleetctl import scan

    def load(fast: bool) -> tuple[str, str]:
        loader = scan._LOADER(text)
        try:
            node = loader.get_single_node()
            data = scan._construct(node, loader) if fast else loader.construct_document(node)
            return "ok", repr(data)  # repr: nan == nan, recursive structures comparable
        except yaml.YAMLError as error:
            return "error", str(error)
        finally:
            loader.dispose()

    assert load(fast=True) == load(fast=False)


def test_the_scan_shares_an_aliased_node_as_pyyaml_does():
    from fleetctl import scan

    data, _ = next(scan._documents("a: &x [1]\nb: *x\n", "f.yaml"))
    assert data == {"a": [1], "b": [1]} and data["a"] is data["b"]


def test_the_fleet_lower_bound_is_rounds_of_the_longest_path_plus_soak():
    from simulator.bench import fleet_lower_bound

    # canary 1 at a time, 24 with 25 at a time, 75 with 25 at a time: 1 + 1 + 3 rounds of 600 s, two soaks
    assert fleet_lower_bound([1, 24, 75], [1, 25, 25], 600.0, [300, 300]) == 5 * 600 + 600
    # one cluster at a time: every cluster is a round
    assert fleet_lower_bound([4], [1], 100.0, []) == 400
