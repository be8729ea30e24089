"""Deterministic fault injection, so crash-safety can be proven by tests rather than promised.

``LEAKYLAB_FAULT=<point>:<step>`` kills the process with SIGKILL (no cleanup, like a machine
dying) when the code reaches ``fault_point(point, step)``. Points used by the project:

- ``after_step`` — right after optimisation step ``step`` finished (training loops);
- ``mid_checkpoint`` — halfway through writing the checkpoint of ``step`` (common.rundir).
"""

from __future__ import annotations

import os
import signal


def fault_point(point: str, step: int) -> None:
    """Kill this process if ``LEAKYLAB_FAULT`` names this point and step; otherwise nothing."""
    spec = os.environ.get("LEAKYLAB_FAULT", "")
    if not spec:
        return
    name, _, at = spec.partition(":")
    if name == point and at.strip() == str(step):
        os.kill(os.getpid(), signal.SIGKILL)
