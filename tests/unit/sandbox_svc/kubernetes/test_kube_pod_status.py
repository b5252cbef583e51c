"""Reading a Pod's status: ready, failed with the kubelet's reason, or on its way."""

from __future__ import annotations

from sandbox_svc.kubernetes.manifest import Manifest
from sandbox_svc.kubernetes.pod_status import pod_state


def _pod(status: Manifest, **metadata: object) -> Manifest:
    return {"metadata": {"name": "p", **metadata}, "status": status}


def _waiting(reason: str, message: str = "", **extra: object) -> Manifest:
    return _pod({"phase": "Pending", "containerStatuses": [
        {"name": "sandboxd", "state": {"waiting": {"reason": reason, "message": message}},
         **extra}]})


def test_a_ready_pod_with_an_ip_is_ready() -> None:
    state = pod_state(_pod({"phase": "Running", "podIP": "10.1.2.3", "conditions": [
        {"type": "Ready", "status": "True"}]}))
    assert (state.ready, state.pod_ip, state.failure, state.gone) == (True, "10.1.2.3", "",
                                                                        False)


def test_an_image_that_cannot_be_pulled_fails_with_the_kubelets_message() -> None:
    state = pod_state(_waiting("ImagePullBackOff", 'Back-off pulling image "x:1"'))
    assert not state.ready
    assert state.failure == 'ImagePullBackOff: Back-off pulling image "x:1"'


def test_a_crash_loop_names_the_last_exit() -> None:
    state = pod_state(_waiting("CrashLoopBackOff", "back-off 10s", lastState={
        "terminated": {"exitCode": 2, "reason": "Error"}}))
    assert state.failure.startswith("CrashLoopBackOff") and "last exit code 2" in state.failure


def test_creating_and_unschedulable_pods_are_progress_not_failure() -> None:
    creating = pod_state(_waiting("ContainerCreating"))
    assert (creating.failure, creating.progress) == ("", "Pending (ContainerCreating)")
    unschedulable = pod_state(_pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: insufficient memory."}]}))
    assert unschedulable.failure == ""
    assert "insufficient memory" in unschedulable.progress


def test_terminated_and_deleting_pods_are_gone() -> None:
    failed = pod_state(_pod({"phase": "Failed", "containerStatuses": [
        {"name": "sandboxd", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}))
    assert failed.gone and "137" in failed.failure and "OOMKilled" in failed.failure
    deleting = pod_state(_pod({"phase": "Running", "podIP": "10.0.0.1"},
                              deletionTimestamp="2026-11-01T00:00:00Z"))
    assert deleting.gone and not deleting.ready
