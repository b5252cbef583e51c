"""sandboxd: the data-plane daemon inside every sandbox (run: python -m sandbox_svc.sandboxd)."""
