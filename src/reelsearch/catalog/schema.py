"""Bring a catalog database to the latest schema with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from reelsearch.config import Settings
from reelsearch.db import make_sync_engine

MIGRATIONS = "reelsearch.catalog:migrations"


def upgrade_schema(settings: Settings) -> None:
    """Create or migrate the catalog at ``settings.database_url`` to the newest revision."""
    migrate_schema(settings, "head")


def migrate_schema(settings: Settings, revision: str, *, down: bool = False) -> None:
    """Migrate the catalog at ``settings.database_url`` up (or ``down``) to ``revision``,
    in one transaction. Down is for tests: a catalog as an older release left it."""
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", MIGRATIONS)
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()
