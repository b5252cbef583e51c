"""Adapters from agent frameworks to the ``/process`` protocol (``query(framework=...)``)."""
