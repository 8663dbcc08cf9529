"""Expands the scenario's workload shorthand into Kubernetes manifests (what ``kubectl apply`` takes).

Scenario authors write ``{kind: DaemonSet, name: log-agent, hostPaths: [/var/run/docker.sock]}``;
the world receives a full DaemonSet manifest, and a PodDisruptionBudget when ``pdb`` is given.
"""

from __future__ import annotations

from typing import Any

from simulator.scenario import WorkloadSpec

_API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "ReplicationController": "v1",
    "Pod": "v1",
}


def _volume_name(index: int) -> str:
    return f"host-{index}"


def pod_spec(spec: WorkloadSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": spec.name[:63],
        "image": spec.image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.env:
        container["env"] = [{"name": k, "value": v} for k, v in spec.env.items()]
    if spec.host_paths:
        container["volumeMounts"] = [
            {"name": _volume_name(i), "mountPath": path} for i, path in enumerate(spec.host_paths)
        ]
    pod: dict[str, Any] = {"containers": [container]}
    if spec.init_image:
        pod["initContainers"] = [{"name": "init", "image": spec.init_image}]
    if spec.host_paths:
        pod["volumes"] = [
            {"name": _volume_name(i), "hostPath": {"path": path}} for i, path in enumerate(spec.host_paths)
        ]
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [dict(t) for t in spec.tolerations]
    if spec.kind in ("Job", "CronJob"):
        pod["restartPolicy"] = "OnFailure"
    return pod


def manifests(spec: WorkloadSpec) -> list[dict[str, Any]]:
    labels = {"app": spec.name, **spec.labels}
    metadata = {"name": spec.name, "namespace": spec.namespace, "labels": labels}
    template = {"metadata": {"labels": labels}, "spec": pod_spec(spec)}
    selector = {"matchLabels": {"app": spec.name}}
    kind = spec.kind
    body: dict[str, Any]
    if kind == "Pod":
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec(spec)}
    elif kind == "CronJob":
        job_template = {"spec": {"template": template}}
        body = {"schedule": spec.schedule, "suspend": spec.suspend, "jobTemplate": job_template}
        body = {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": body}
    elif kind == "Job":
        job_spec = {"parallelism": spec.replicas, "completions": spec.replicas, "template": template}
        body = {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": job_spec}
    elif kind == "DaemonSet":
        body = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": metadata,
            "spec": {"selector": selector, "template": template},
        }
    elif kind == "ReplicationController":
        rc_spec = {"replicas": spec.replicas, "selector": {"app": spec.name}, "template": template}
        body = {"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": rc_spec}
    else:  # Deployment, StatefulSet, ReplicaSet
        workload_spec: dict[str, Any] = {
            "replicas": spec.replicas,
            "selector": selector,
            "template": template,
        }
        if kind == "StatefulSet":
            workload_spec["serviceName"] = spec.name
        body = {"apiVersion": _API_VERSIONS[kind], "kind": kind, "metadata": metadata, "spec": workload_spec}
    result = [body]
    if spec.pdb:
        result.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": spec.name, "namespace": spec.namespace},
                "spec": {**spec.pdb, "selector": selector},
            }
        )
    return result


def generated_workloads(
    *, namespaces: int, workloads: int, pods: int, budget_every: int = 4
) -> list[WorkloadSpec]:
    """A large, regular cluster for scale benchmarks (simulator/bench.py): ``workloads`` Deployments
    and StatefulSets (one in five) spread evenly over ``namespaces`` namespaces, ``pods`` replicas
    in all (spread as evenly as they divide), a PodDisruptionBudget on every ``budget_every``-th.
    Every 50th workload mounts the Docker socket, so the readiness rules have something to find."""
    if namespaces < 1 or workloads < namespaces or pods < workloads:
        raise ValueError("need namespaces >= 1, workloads >= namespaces and pods >= workloads")
    specs = []
    for index in range(workloads):
        kind = "StatefulSet" if index % 5 == 4 else "Deployment"
        replicas = pods // workloads + (1 if index < pods % workloads else 0)
        spec: dict[str, Any] = {
            "kind": kind,
            "name": f"{kind.lower()}-{index:05d}",
            "namespace": f"team-{index % namespaces:04d}",
            "replicas": replicas,
        }
        if index % budget_every == 0:
            spec["pdb"] = {"maxUnavailable": 1} if kind == "StatefulSet" else {"maxUnavailable": "25%"}
        if index % 50 == 0:
            spec["hostPaths"] = ["/var/run/docker.sock"]
        specs.append(WorkloadSpec.model_validate(spec))
    return specs
