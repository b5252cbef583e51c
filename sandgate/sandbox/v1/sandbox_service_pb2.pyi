import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SandboxState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SANDBOX_STATE_UNSPECIFIED: _ClassVar[SandboxState]
    SANDBOX_STATE_STARTING: _ClassVar[SandboxState]
    SANDBOX_STATE_READY: _ClassVar[SandboxState]
    SANDBOX_STATE_PAUSED: _ClassVar[SandboxState]
    SANDBOX_STATE_TERMINATED: _ClassVar[SandboxState]

class SandboxEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SANDBOX_EVENT_TYPE_UNSPECIFIED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_CREATED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_BOUND: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_PAUSED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_RESUMED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_DELETED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_EXPIRED: _ClassVar[SandboxEventType]
    SANDBOX_EVENT_TYPE_ADOPTED: _ClassVar[SandboxEventType]
SANDBOX_STATE_UNSPECIFIED: SandboxState
SANDBOX_STATE_STARTING: SandboxState
SANDBOX_STATE_READY: SandboxState
SANDBOX_STATE_PAUSED: SandboxState
SANDBOX_STATE_TERMINATED: SandboxState
SANDBOX_EVENT_TYPE_UNSPECIFIED: SandboxEventType
SANDBOX_EVENT_TYPE_CREATED: SandboxEventType
SANDBOX_EVENT_TYPE_BOUND: SandboxEventType
SANDBOX_EVENT_TYPE_PAUSED: SandboxEventType
SANDBOX_EVENT_TYPE_RESUMED: SandboxEventType
SANDBOX_EVENT_TYPE_DELETED: SandboxEventType
SANDBOX_EVENT_TYPE_EXPIRED: SandboxEventType
SANDBOX_EVENT_TYPE_ADOPTED: SandboxEventType

class SessionKey(_message.Message):
    __slots__ = ("user_id", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class Sandbox(_message.Message):
    __slots__ = ("sandbox_id", "template", "tenant", "state", "session", "created_at", "last_active_at", "expires_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    template: str
    tenant: str
    state: SandboxState
    session: SessionKey
    created_at: _timestamp_pb2.Timestamp
    last_active_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, sandbox_id: _Optional[str] = ..., template: _Optional[str] = ..., tenant: _Optional[str] = ..., state: _Optional[_Union[SandboxState, str]] = ..., session: _Optional[_Union[SessionKey, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_active_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SandboxConnection(_message.Message):
    __slots__ = ("target", "token")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    target: str
    token: str
    def __init__(self, target: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class CreateSandboxRequest(_message.Message):
    __slots__ = ("template", "ttl", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    template: str
    ttl: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    def __init__(self, template: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateSandboxResponse(_message.Message):
    __slots__ = ("sandbox", "connection")
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    connection: SandboxConnection
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ..., connection: _Optional[_Union[SandboxConnection, _Mapping]] = ...) -> None: ...

class AcquireSandboxRequest(_message.Message):
    __slots__ = ("template", "session", "ttl")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    template: str
    session: SessionKey
    ttl: _duration_pb2.Duration
    def __init__(self, template: _Optional[str] = ..., session: _Optional[_Union[SessionKey, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AcquireSandboxResponse(_message.Message):
    __slots__ = ("sandbox", "connection", "newly_bound", "pool_hit")
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    NEWLY_BOUND_FIELD_NUMBER: _ClassVar[int]
    POOL_HIT_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    connection: SandboxConnection
    newly_bound: bool
    pool_hit: bool
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ..., connection: _Optional[_Union[SandboxConnection, _Mapping]] = ..., newly_bound: _Optional[bool] = ..., pool_hit: _Optional[bool] = ...) -> None: ...

class GetSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class GetSandboxResponse(_message.Message):
    __slots__ = ("sandbox", "connection")
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    connection: SandboxConnection
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ..., connection: _Optional[_Union[SandboxConnection, _Mapping]] = ...) -> None: ...

class ListSandboxesRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: str
    def __init__(self, template: _Optional[str] = ...) -> None: ...

class ListSandboxesResponse(_message.Message):
    __slots__ = ("sandboxes",)
    SANDBOXES_FIELD_NUMBER: _ClassVar[int]
    sandboxes: _containers.RepeatedCompositeFieldContainer[Sandbox]
    def __init__(self, sandboxes: _Optional[_Iterable[_Union[Sandbox, _Mapping]]] = ...) -> None: ...

class DeleteSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class DeleteSandboxResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseSessionRequest(_message.Message):
    __slots__ = ("session", "template")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    session: SessionKey
    template: str
    def __init__(self, session: _Optional[_Union[SessionKey, _Mapping]] = ..., template: _Optional[str] = ...) -> None: ...

class ReleaseSessionResponse(_message.Message):
    __slots__ = ("sandbox_ids",)
    SANDBOX_IDS_FIELD_NUMBER: _ClassVar[int]
    sandbox_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sandbox_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RenewSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id", "ttl")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    ttl: _duration_pb2.Duration
    def __init__(self, sandbox_id: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RenewSandboxResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class PauseSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class PauseSandboxResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class ResumeSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class ResumeSandboxResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class ResourceLimits(_message.Message):
    __slots__ = ("memory_bytes", "max_pids", "cpu_millis")
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PIDS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    memory_bytes: int
    max_pids: int
    cpu_millis: int
    def __init__(self, memory_bytes: _Optional[int] = ..., max_pids: _Optional[int] = ..., cpu_millis: _Optional[int] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "description", "tool_groups", "limits", "pool_size", "network_enabled", "default_ttl", "idle_timeout", "isolation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TOOL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TTL_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    tool_groups: _containers.RepeatedScalarFieldContainer[str]
    limits: ResourceLimits
    pool_size: int
    network_enabled: bool
    default_ttl: _duration_pb2.Duration
    idle_timeout: _duration_pb2.Duration
    isolation: Isolation
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., tool_groups: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., pool_size: _Optional[int] = ..., network_enabled: _Optional[bool] = ..., default_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., idle_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., isolation: _Optional[_Union[Isolation, _Mapping]] = ...) -> None: ...

class Isolation(_message.Message):
    __slots__ = ("runtime", "namespaces", "inner_uid", "seccomp_profile", "user_namespaces_disabled", "network_policy", "network_allow")
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    INNER_UID_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    USER_NAMESPACES_DISABLED_FIELD_NUMBER: _ClassVar[int]
    NETWORK_POLICY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ALLOW_FIELD_NUMBER: _ClassVar[int]
    runtime: str
    namespaces: _containers.RepeatedScalarFieldContainer[str]
    inner_uid: int
    seccomp_profile: str
    user_namespaces_disabled: bool
    network_policy: str
    network_allow: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, runtime: _Optional[str] = ..., namespaces: _Optional[_Iterable[str]] = ..., inner_uid: _Optional[int] = ..., seccomp_profile: _Optional[str] = ..., user_namespaces_disabled: _Optional[bool] = ..., network_policy: _Optional[str] = ..., network_allow: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class GetPoolStatusRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: str
    def __init__(self, template: _Optional[str] = ...) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("template", "target_size", "ready", "starting")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SIZE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STARTING_FIELD_NUMBER: _ClassVar[int]
    template: str
    target_size: int
    ready: int
    starting: int
    def __init__(self, template: _Optional[str] = ..., target_size: _Optional[int] = ..., ready: _Optional[int] = ..., starting: _Optional[int] = ...) -> None: ...

class GetPoolStatusResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolStatus]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolStatus, _Mapping]]] = ...) -> None: ...

class WatchSandboxesRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: str
    def __init__(self, template: _Optional[str] = ...) -> None: ...

class WatchSandboxesResponse(_message.Message):
    __slots__ = ("type", "sandbox", "time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    type: SandboxEventType
    sandbox: Sandbox
    time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[SandboxEventType, str]] = ..., sandbox: _Optional[_Union[Sandbox, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
