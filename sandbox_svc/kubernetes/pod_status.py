"""What a sandbox Pod's status says: ready, failed (and why), or still on its way.

Failures that will not heal by waiting end a start at once with the kubelet's
reason (an image that cannot be pulled, a container that keeps crashing, a
Pod that terminated); a Pod that is merely Pending (not scheduled yet,
pulling, creating) is reported as progress and left to the start timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox_svc.kubernetes.manifest import field, text

__all__ = ["FATAL_WAITING_REASONS", "PodState", "pod_state"]

FATAL_WAITING_REASONS = frozenset({
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
    "RunContainerError",
})
"""Waiting reasons a start does not wait out."""


@dataclass(frozen=True)
class PodState:
    """One reading of a Pod's status."""

    ready: bool
    pod_ip: str
    failure: str
    """Why the Pod will not become ready ("" while it still may)."""
    progress: str
    """Where it is on its way to Ready, for progress logs and timeout messages."""
    gone: bool = False
    """Terminated or being deleted: its sandbox is dead."""


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _condition(pod: object, kind: str) -> object:
    for condition in _list(field(pod, "status", "conditions")):
        if text(condition, "type") == kind:
            return condition
    return None


def _explain(reason: str, message: str) -> str:
    return f"{reason}: {message}" if message else reason


def pod_state(pod: object) -> PodState:
    """Interpret ``pod`` (as the API server returns it).

    Raises:
        Nothing.
    """
    phase = text(pod, "status", "phase") or "Pending"
    pod_ip = text(pod, "status", "podIP")
    if field(pod, "metadata", "deletionTimestamp") is not None:
        return PodState(False, pod_ip, "the Pod is being deleted", "Terminating", gone=True)
    if phase in ("Failed", "Succeeded"):
        reason = text(pod, "status", "reason") or phase
        detail = _explain(reason, text(pod, "status", "message"))
        for status in _list(field(pod, "status", "containerStatuses")):
            terminated = field(status, "state", "terminated")
            if terminated is not None:
                detail = (f"sandboxd exited with code {field(terminated, 'exitCode')} "
                          f"({_explain(text(terminated, 'reason'), text(terminated, 'message'))})")
        return PodState(False, pod_ip, f"the Pod {phase.lower()}: {detail}", phase, gone=True)
    for status in _list(field(pod, "status", "containerStatuses")):
        waiting_reason = text(status, "state", "waiting", "reason")
        waiting = _explain(waiting_reason, text(status, "state", "waiting", "message"))
        if waiting_reason in FATAL_WAITING_REASONS:
            last = field(status, "lastState", "terminated")
            if last is not None:
                waiting += (f"; last exit code {field(last, 'exitCode')} "
                            f"({text(last, 'reason') or 'no reason'})")
            return PodState(False, pod_ip, waiting, phase)
        if waiting_reason:
            return PodState(False, pod_ip, "", f"{phase} ({waiting})")
    ready = text(_condition(pod, "Ready"), "status") == "True"
    if ready and pod_ip:
        return PodState(True, pod_ip, "", "Ready")
    scheduled = _condition(pod, "PodScheduled")
    if text(scheduled, "status") == "False":
        unscheduled = _explain(text(scheduled, "reason") or "Unschedulable",
                               text(scheduled, "message"))
        return PodState(False, pod_ip, "", f"Pending ({unscheduled})")
    return PodState(False, pod_ip, "", phase if phase != "Running" else "Running, not ready yet")
