"""In-memory fake of the fleet's run table (upgrader.gateways.locks.DynamoRunTable's interface).

tests/integration/test_locks_contract.py runs the same contract against the real gateway on moto."""

from __future__ import annotations

from upgrader.fleet.models import LeaseResult, WaveRecord


class FakeRunTable:
    def __init__(self) -> None:
        self.leases: dict[str, LeaseResult] = {}
        self.records: dict[tuple[str, int], WaveRecord] = {}
        self.approvals: dict[tuple[str, str], str] = {}

    def put_lease_if_free(self, lease: LeaseResult, now: int) -> LeaseResult | None:
        holder = self.leases.get(lease.key)
        if holder is not None and holder.expires_at >= now and holder.owner != lease.owner:
            return holder
        self.leases[lease.key] = lease
        return None

    def get_lease(self, key: str) -> LeaseResult | None:
        return self.leases.get(key)

    def delete_lease_if_owner(self, key: str, owner: str) -> bool:
        holder = self.leases.get(key)
        if holder is None or holder.owner != owner:
            return False
        del self.leases[key]
        return True

    def put_wave(self, fleet: str, record: WaveRecord) -> None:
        self.records[(fleet, record.index)] = record

    def waves(self, fleet: str) -> list[WaveRecord]:
        return [record for (name, _), record in sorted(self.records.items()) if name == fleet]

    def put_approval_request(self, fleet: str, wave: str, task_token: str, requested_at: str) -> str:
        self.approvals[(fleet, wave)] = task_token
        return f"APPROVAL#{fleet}"


class FakeReportWriter:
    def __init__(self, bucket: str = "reports") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body
