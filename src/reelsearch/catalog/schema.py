"""Bring a catalog database to the latest schema with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from reelsearch.config import Settings
from reelsearch.db import make_sync_engine

MIGRATIONS = "reelsearch.catalog:migrations"


def upgrade_schema(settings: Settings) -> None:
    """Create or migrate the catalog at ``settings.database_url`` to the newest revision."""
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", MIGRATIONS)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
