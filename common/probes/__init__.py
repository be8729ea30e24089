"""Dead-unit probes: attach to any model in one call, read per-layer statistics once per window.

Per activation module: dead fraction (units whose pre-activation was never positive in the
window; LeakyReLU judged by the sign of its input, since its output is never 0), ReDo dormancy
fraction at tau, gradient sparsity (exactly-zero local derivatives), activation RMS and gradient
RMS. Functional calls such as ``F.relu`` are not modules and are invisible to the probes.
See probes.py for the step protocol and stats.py for the exact definitions.
"""

from common.probes.config import REDO_TAU, ProbeConfig
from common.probes.probes import Probes, attach_probes
from common.probes.topology import SATURATING, activation_kind, activation_layers, infer_unit_dim

__all__ = ["ProbeConfig", "REDO_TAU", "Probes", "attach_probes", "SATURATING", "activation_kind",
           "activation_layers", "infer_unit_dim"]
