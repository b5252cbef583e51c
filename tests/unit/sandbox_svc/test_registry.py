"""The registry contract, for every registry; then what only SQLite promises.

The Kubernetes registry runs against the fake API server (tests/fixtures).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from sandbox_svc.errors import RegistryUnavailableError, SessionConflictError
from sandbox_svc.registry import Registry, SandboxRecord, SandboxStatus, SessionKey
from sandbox_svc.registry_memory import MemoryRegistry
from sandbox_svc.registry_sqlite import SCHEMA_VERSION, SqliteRegistry


def _record(sid: str, created: float = 0.0, **kw: object) -> SandboxRecord:
    now = time.time()
    values: dict[str, object] = dict(
        sandbox_id=sid, template="base", token="t", status=SandboxStatus.READY,
        created_at=created or now, last_active_at=now)
    values.update(kw)
    return SandboxRecord(**values)  # type: ignore[arg-type]


def _key(session: str, tenant: str = "acme", template: str = "base") -> SessionKey:
    return SessionKey(tenant, "", session, template)


@contextlib.asynccontextmanager
async def _opened(registry: Registry) -> AsyncIterator[Registry]:
    try:
        yield registry
    finally:
        await registry.close()


@contextlib.asynccontextmanager
async def _kubernetes(tmp: Path) -> AsyncIterator[Registry]:
    from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
    from sandbox_svc.kubernetes.registry import KubernetesRegistry
    from tests.fixtures.fake_kube_api import FakeKubeApi

    fake = FakeKubeApi()
    fake.start()
    try:
        api = await open_api(KubernetesSettings(
            namespace="sandboxes", kubeconfig=fake.write_kubeconfig(tmp / "kubeconfig")))
        async with _opened(KubernetesRegistry(api)) as registry:
            yield registry
    finally:
        fake.stop()


RegistryFactory = Callable[[Path], AbstractAsyncContextManager[Registry]]
FACTORIES: dict[str, RegistryFactory] = {
    "sqlite": lambda tmp: _opened(SqliteRegistry(tmp / "r.db")),
    "memory": lambda tmp: _opened(MemoryRegistry()),
    "kubernetes": _kubernetes,
}


@pytest.fixture(params=sorted(FACTORIES))
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Registry]:
    async with FACTORIES[request.param](tmp_path) as opened:
        yield opened


async def test_concurrent_binds_never_share_a_pooled_sandbox(registry: Registry) -> None:
    for i in range(3):
        await registry.insert(_record(f"p{i}", created=i + 1))
    now = time.time()
    binds = await asyncio.gather(*(
        registry.bind_session(_key(f"s{i}"), now, now + 60) for i in range(5)))
    won = [b.record.sandbox_id for b in binds if b is not None]
    assert sorted(won) == ["p0", "p1", "p2"]
    assert all(b.newly_bound and b.pool_hit for b in binds if b is not None)
    assert sum(b is None for b in binds) == 2


async def test_a_bind_claims_the_oldest_ready_pooled_sandbox_of_its_template(
        registry: Registry) -> None:
    await registry.insert(_record("starting", created=1, status=SandboxStatus.STARTING))
    await registry.insert(_record("other", created=2, template="browser"))
    await registry.insert(_record("young", created=4))
    await registry.insert(_record("old", created=3))
    binding = await registry.bind_session(_key("s1"), 10.0, 70.0)
    assert binding is not None
    record = binding.record
    assert record.sandbox_id == "old"
    assert (record.tenant, record.session_id, record.last_active_at, record.expires_at) == (
        "acme", "s1", 10.0, 70.0)
    assert await registry.get("old") == record


async def test_a_bound_session_gets_its_own_sandbox_back_touched(registry: Registry) -> None:
    await registry.insert(_record("a", tenant="acme", session_id="s1", expires_at=500.0))
    await registry.insert(_record("p"))
    binding = await registry.bind_session(_key("s1"), 100.0, 200.0)
    assert binding is not None and not binding.newly_bound and not binding.pool_hit
    assert binding.record.sandbox_id == "a"
    assert (binding.record.last_active_at, binding.record.expires_at) == (100.0, 500.0)
    again = await registry.bind_session(_key("s1"), 101.0, 900.0)
    assert again is not None and again.record.expires_at == 900.0
    pooled = await registry.get("p")
    assert pooled is not None and pooled.pooled


async def test_session_keys_are_per_tenant_and_template(registry: Registry) -> None:
    await registry.insert(_record("a", tenant="acme", session_id="s1"))
    assert await registry.bind_session(_key("s1", tenant="globex"), 1.0, 2.0) is None
    assert await registry.bind_session(_key("s1", template="browser"), 1.0, 2.0) is None


async def test_a_starting_row_is_returned_as_the_sessions_sandbox(registry: Registry) -> None:
    await registry.insert(_record("a", tenant="acme", session_id="s1",
                                  status=SandboxStatus.STARTING))
    binding = await registry.bind_session(_key("s1"), 1.0, 2.0)
    assert binding is not None and binding.record.status is SandboxStatus.STARTING


async def test_inserting_a_second_sandbox_for_a_session_is_refused(registry: Registry) -> None:
    await registry.insert(_record("a", tenant="acme", session_id="s1",
                                  status=SandboxStatus.STARTING))
    with pytest.raises(SessionConflictError):
        await registry.insert(_record("b", tenant="acme", session_id="s1",
                                      status=SandboxStatus.STARTING))
    assert await registry.get("b") is None
    await registry.insert(_record("c", tenant="acme", session_id="s2"))


async def test_update_writes_only_a_record_that_still_exists(registry: Registry) -> None:
    record = _record("a")
    await registry.insert(record)
    assert await registry.update(record.with_changes(target="unix:///x"))
    stored = await registry.get("a")
    assert stored is not None and stored.target == "unix:///x"
    await registry.remove("a")
    assert not await registry.update(record)
    assert await registry.get("a") is None
    await registry.remove("a")  # removing twice is fine


async def test_all_lists_oldest_first(registry: Registry) -> None:
    for sid, created in (("b", 2.0), ("c", 3.0), ("a", 1.0)):
        await registry.insert(_record(sid, created=created))
    assert [r.sandbox_id for r in await registry.all()] == ["a", "b", "c"]


# ----- SQLite only ---------------------------------------------------------------


async def test_records_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = SqliteRegistry(path)
    await registry.insert(_record("a", labels={"k": "v"}))
    await registry.close()
    again = SqliteRegistry(path)
    record = await again.get("a")
    await again.close()
    assert record is not None and record.labels == {"k": "v"} and record.pooled
    assert oct(path.stat().st_mode & 0o777) == "0o600"


_OLD_SCHEMA = """
CREATE TABLE sandboxes (
    sandbox_id TEXT PRIMARY KEY, template TEXT NOT NULL, uid INTEGER NOT NULL UNIQUE,
    token TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
    last_active_at REAL NOT NULL, tenant TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '', session_id TEXT NOT NULL DEFAULT '',
    expires_at REAL, target TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX sandboxes_session
    ON sandboxes (tenant, user_id, session_id, template) WHERE session_id != '';
CREATE TABLE uid_reservations (uid INTEGER PRIMARY KEY);
INSERT INTO uid_reservations VALUES (200002);
INSERT INTO sandboxes VALUES ('sbx-a', 'base', 200000, 'tok', 'ready', 1.0, 2.0,
    'acme', 'u', 's1', 9.0, 'unix:///a', '{"k": "v"}');
INSERT INTO sandboxes VALUES ('sbx-b', 'base', 200001, 'tok', 'ready', 3.0, 3.0,
    '', '', '', NULL, 'unix:///b', '{}');
"""


async def test_a_registry_file_from_before_the_uid_move_opens_with_its_records(
        tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    old.close()

    registry = SqliteRegistry(path)
    bound = await registry.get("sbx-a")
    assert bound is not None and bound.session == SessionKey("acme", "u", "s1", "base")
    assert (bound.target, bound.labels, bound.expires_at) == ("unix:///a", {"k": "v"}, 9.0)
    # The session index came along: a second sandbox for s1 is refused.
    with pytest.raises(SessionConflictError):
        await registry.insert(_record("sbx-c", tenant="acme", user_id="u", session_id="s1"))
    binding = await registry.bind_session(SessionKey("acme", "u", "s2", "base"), 5.0, 6.0)
    assert binding is not None and binding.record.sandbox_id == "sbx-b"
    await registry.close()

    check = sqlite3.connect(path)
    columns = [r[1] for r in check.execute("PRAGMA table_info(sandboxes)")]
    tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = check.execute("PRAGMA user_version").fetchone()[0]
    check.close()
    assert "uid" not in columns and tables == {"sandboxes"} and version == SCHEMA_VERSION


async def test_a_registry_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    await SqliteRegistry(path).close()
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(RegistryUnavailableError):
        SqliteRegistry(path)


async def test_two_registries_on_one_file_never_share_a_pooled_sandbox(tmp_path: Path) -> None:
    first, second = SqliteRegistry(tmp_path / "r.db"), SqliteRegistry(tmp_path / "r.db")
    for i in range(4):
        await first.insert(_record(f"p{i}", created=i + 1))
    binds = await asyncio.gather(*(
        (first if i % 2 else second).bind_session(_key(f"s{i}"), 1.0, 2.0) for i in range(8)))
    won = [b.record.sandbox_id for b in binds if b is not None]
    assert sorted(won) == ["p0", "p1", "p2", "p3"]
    await first.close()
    await second.close()


async def test_claim_pooled_takes_the_oldest_ready_pooled_sandbox_for_a_tenant(
        registry: Registry) -> None:
    await registry.insert(_record("starting", created=1, status=SandboxStatus.STARTING))
    await registry.insert(_record("bound", created=2, tenant="acme", session_id="s1"))
    await registry.insert(_record("other", created=3, template="browser"))
    await registry.insert(_record("young", created=5))
    await registry.insert(_record("old", created=4))
    claimed = await registry.claim_pooled("base", "acme", 10.0, 70.0, {"team": "a"})
    assert claimed is not None and claimed.sandbox_id == "old"
    assert (claimed.tenant, claimed.user_id, claimed.session_id) == ("acme", "", "")
    assert (claimed.last_active_at, claimed.expires_at, claimed.labels) == (
        10.0, 70.0, {"team": "a"})
    assert await registry.get("old") == claimed
    assert (await registry.claim_pooled("base", "acme", 11.0, 71.0, {}) or claimed
            ).sandbox_id == "young"
    assert await registry.claim_pooled("base", "acme", 12.0, 72.0, {}) is None


async def test_concurrent_claims_never_share_a_pooled_sandbox(registry: Registry) -> None:
    for i in range(3):
        await registry.insert(_record(f"p{i}", created=i + 1))
    claims = await asyncio.gather(*(
        registry.claim_pooled("base", f"t{i}", 1.0, 2.0, {}) for i in range(5)))
    won = [c.sandbox_id for c in claims if c is not None]
    assert sorted(won) == ["p0", "p1", "p2"]
    assert sum(c is None for c in claims) == 2
    assert all(not r.pooled for r in await registry.all())


async def test_two_registries_on_one_file_never_claim_one_pooled_sandbox_twice(
        tmp_path: Path) -> None:
    first, second = SqliteRegistry(tmp_path / "r.db"), SqliteRegistry(tmp_path / "r.db")
    for i in range(4):
        await first.insert(_record(f"p{i}", created=i + 1))
    claims = await asyncio.gather(*(
        (first if i % 2 else second).claim_pooled("base", "acme", 1.0, 2.0, {})
        for i in range(8)))
    assert sorted(c.sandbox_id for c in claims if c is not None) == ["p0", "p1", "p2", "p3"]
    await first.close()
    await second.close()
