"""leakylab's applications, and the one list of them.

Each app describes itself in a small module that registers a :class:`common.appspec.AppSpec`
when imported; :func:`load_apps` imports them all, so tools that drive apps (the comparison
runner) find every app here instead of naming any. An app kept outside this repository joins by
naming its description module in the environment variable ``LEAKYLAB_APPS`` (comma-separated).
"""

from __future__ import annotations

import importlib
import os

from common.appspec import app_names
from common.errors import UserError

APP_MODULES = ("apps.gan.app", "apps.translation.app")
ENV_VAR = "LEAKYLAB_APPS"


def load_apps() -> tuple[str, ...]:
    """Import every app description (cheap: they import no app code); the registered names."""
    for module in APP_MODULES:
        importlib.import_module(module)
    for module in filter(None, (m.strip() for m in os.environ.get(ENV_VAR, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(f"app description '{module}' named in {ENV_VAR} cannot be imported ({exc}); "
                            "fix the name or put its folder on PYTHONPATH") from None
    return app_names()
