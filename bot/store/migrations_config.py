"""Config for the `tortoise` CLI used by `make migrations`."""

import os

from bot.store.db import tortoise_config

TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", "sqlite:///tmp/scrmbot-makemigrations.db"))
