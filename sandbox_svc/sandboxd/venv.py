"""Enter the virtual environment without ``site``: sandboxd starts as ``python -S -P``.

``site`` costs sandboxd's cold start about a tenth of its CPU time for
nothing it needs: it runs every ``.pth`` file of the venv (the editable
install's finder alone imports pathlib, importlib.util and urllib.parse, and
maps packages to a source tree that the sandbox does not have; sandboxd's own
sources come from ``PYTHONPATH``), Debian's ``sitecustomize``, and would add a
user site directory under ``$HOME``, i.e. the user's ``/workspace``. ``-P``
likewise keeps the working directory (``/workspace``) off ``sys.path``: what
sandboxd imports on first use (the kernel client, Playwright) must never come
from files a command wrote there.

:func:`enter_venv` does the one part of ``site`` that sandboxd needs, as
``site.venv()`` would: the venv's prefix and its site-packages.
"""

from __future__ import annotations

import os
import sys

__all__ = ["enter_venv"]


def enter_venv() -> None:
    """Under ``-S`` in a venv: set the venv's prefix and append its site-packages.

    Does nothing when ``site`` ran (it did this already) or when the
    interpreter is not a venv's.
    """
    if not sys.flags.no_site:
        return
    root = os.path.dirname(os.path.dirname(sys.executable))
    if not os.path.isfile(os.path.join(root, "pyvenv.cfg")):
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = os.path.join(root, "lib", version, "site-packages")
    sys.prefix = sys.exec_prefix = root
    if site_packages not in sys.path:
        sys.path.append(site_packages)
