from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sandbox_svc.registry import SandboxRecord, SandboxStatus, SqliteRegistry


def _record(sid: str, uid: int, **kw: object) -> SandboxRecord:
    now = time.time()
    values: dict[str, object] = dict(
        sandbox_id=sid, template="base", uid=uid, token="t", status=SandboxStatus.READY,
        created_at=now, last_active_at=now)
    values.update(kw)
    return SandboxRecord(**values)  # type: ignore[arg-type]


async def test_records_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = SqliteRegistry(path)
    await registry.insert(_record("a", 1, labels={"k": "v"}))
    registry.close()
    again = SqliteRegistry(path)
    record = await again.get("a")
    assert record is not None and record.labels == {"k": "v"} and record.pooled
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def test_concurrent_claims_never_share_a_pooled_sandbox(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.db")
    for i in range(3):
        await registry.insert(_record(f"p{i}", i))
    now = time.time()
    claims = await asyncio.gather(*(
        registry.claim_pooled("base", "acme", "", f"s{i}", now, now + 60) for i in range(5)))
    won = [c.sandbox_id for c in claims if c is not None]
    assert sorted(won) == ["p0", "p1", "p2"]
    assert sum(c is None for c in claims) == 2


async def test_a_session_is_bound_to_one_sandbox_per_template(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.db")
    await registry.insert(_record("a", 1, tenant="acme", session_id="s1"))
    await registry.insert(_record("p", 2))
    now = time.time()
    assert await registry.claim_pooled("base", "acme", "", "s1", now, now) is None
    found = await registry.find_session("acme", "", "s1", "base")
    assert found is not None and found.sandbox_id == "a"
    assert await registry.find_session("globex", "", "s1", "base") is None


async def test_uids_are_unique_and_bounded(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.db")
    await registry.insert(_record("a", 100))
    uids = [await registry.allocate_uid(100, 3) for _ in range(3)]
    assert uids == [101, 102, None]
    await registry.clear_reservations()
    assert await registry.allocate_uid(100, 3) == 101
