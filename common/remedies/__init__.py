"""Remedies for dying units: decay-free bias groups, bias init, bias warming, the thermal kick, ReDo.

- :func:`param_groups` — optimizer groups; biases, norms and activation parameters undecayed;
- :class:`BiasWarming` / :func:`warming_offset` — γ(step) added to rectifier pre-activations;
- :func:`thermal_kick` — noise on dead units' incoming weights and bias;
- :func:`redo_recycle` — ReDo: re-init dormant units, zero their outgoing weights and moments;
- :class:`RemedyConfig` and :class:`Remedies` — the config section and the per-step entry point;
- :func:`unit_sites` — which layer feeds / consumes each activation (built on
  ``common.activations.graph.find_links``).
"""

from common.remedies.config import RemedyConfig
from common.remedies.groups import param_groups
from common.remedies.kick import thermal_kick
from common.remedies.redo import redo_recycle
from common.remedies.runner import Remedies
from common.remedies.sites import UnitSite, unit_sites
from common.remedies.warming import BiasWarming, warming_offset

__all__ = ["RemedyConfig", "param_groups", "thermal_kick", "redo_recycle", "Remedies", "UnitSite", "unit_sites",
           "BiasWarming", "warming_offset"]
