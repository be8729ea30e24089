"""Entry point of ``python -m apps.compare``."""

from apps.compare.main import main
from common.errors import cli

if __name__ == "__main__":
    cli(main)
