"""Config for the `tortoise` CLI (`make migrations`): `tortoise -c models.cli_config.TORTOISE_ORM`."""

import os

from bot.db import tortoise_config

TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", "sqlite:///tmp/scrmbot-makemigrations.db"))
