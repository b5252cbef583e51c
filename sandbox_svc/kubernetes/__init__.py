"""The Kubernetes backend: one Pod per sandbox, the API server as the registry.

Modules: ``api`` (the API client, async, with translated errors), ``config``
(settings, finding the cluster), ``objects`` (Pod, Secret, NetworkPolicy
builders), ``pod_status``, ``backoff``, ``backend`` (the SandboxBackend),
``records`` and ``registry`` (the Registry on Secrets), ``reconciler``, and
``deployment`` (opens all of them on one client).
Nothing here is imported unless ``SANDGATE_DEPLOYMENT=k8s``: the official
client takes over a second to import.
"""
