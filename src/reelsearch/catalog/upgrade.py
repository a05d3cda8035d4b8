"""Whether a catalog can be served by this release, and ``reelsearch upgrade``.

A release that adds a migration (0007: PostgreSQL's title postings table) finds a
catalog imported before it at an older schema revision. Searches still work, but
``/ready`` says ``migrations`` is not ready, so a load balancer keeps the server out
of rotation. Importing again fixes that, but needs the source files; ``reelsearch
upgrade`` runs the missing migrations on the catalog in place instead (``alembic
upgrade head``, one transaction), leaving its movies and version as they are. What a
new migration adds is filled by the next import (0007: the postings; until then
searches read the title index alone, as before the upgrade).

``reelsearch serve`` checks the same before it starts its workers (``check_servable``):
a database that is not a catalog, or one never imported, stops it with a clear message;
an older schema starts it with a warning that names the command.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from reelsearch.config import Settings
from reelsearch.errors import CatalogError, CatalogNotImported

REVISION_SQL = "SELECT version_num FROM alembic_version"


def shown_url(url: str) -> str:
    """A database URL fit for a message: the password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_servable(settings: Settings) -> str | None:
    """Raise CatalogError unless ``settings`` name an imported catalog; a warning to
    print when its schema is older than this release's (else None)."""
    from reelsearch.observability.readiness import SCHEMA_HEAD
    from reelsearch.search.snapshot import NOT_IMPORTED, VERSION_SQL

    version, revision = _read(settings, VERSION_SQL), _read(settings, REVISION_SQL)
    if version is not None and int(version) == NOT_IMPORTED:
        raise CatalogNotImported(shown_url(settings.database_url))
    if revision is None or revision == SCHEMA_HEAD:
        return None
    return (
        f"the catalog's schema is at revision {revision} and this release's is {SCHEMA_HEAD}: "
        "searches work, but /ready reports it not ready until `reelsearch upgrade` "
        "(or an import) brings it up to date"
    )


def upgrade_catalog(settings: Settings) -> str:
    """Run the migrations the catalog lacks, in one transaction; what was done."""
    from reelsearch.catalog.schema import upgrade_schema
    from reelsearch.observability.readiness import migrations_head

    if settings.backend == "sqlite" and not Path(settings.sqlite_path).is_file():
        raise CatalogError(
            f"no catalog at {settings.sqlite_path}: `reelsearch import sample` makes one"
        )
    before = _read(settings, REVISION_SQL)
    head = migrations_head()
    if before == head:
        return f"the catalog's schema is already at revision {head}: nothing to do"
    upgrade_schema(settings)
    if before is None:
        return (
            f"created the catalog schema at revision {head}; "
            "import a catalog next (`reelsearch import sample`)"
        )
    return (
        f"upgraded the catalog's schema from revision {before} to {head}; its movies and "
        "version are unchanged, and what the new revisions add comes with the next import"
    )


def _read(settings: Settings, statement: str) -> str | None:
    """The first column of ``statement``'s first row, or None when the table is missing
    (a database reelsearch never migrated); CatalogError if the database can't be read."""
    if settings.backend == "postgresql":
        import psycopg

        try:
            with psycopg.connect(settings.postgres_dsn, connect_timeout=10) as conn:
                row: Any = conn.execute(statement).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        except psycopg.Error as exc:
            raise CatalogError(
                f"the PostgreSQL catalog can't be read: {str(exc).strip()}. "
                "Run `reelsearch import sample` with the same REELSEARCH_DATABASE_URL first."
            ) from None
        return None if row is None else str(row[0])
    from reelsearch.db import ReadPool

    pool = ReadPool(settings)
    try:
        with pool.connection() as conn:
            row = conn.execute(statement).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise CatalogError(f"{settings.sqlite_path} is not a reelsearch catalog: {exc}") from None
    except sqlite3.Error as exc:
        raise CatalogError(f"{settings.sqlite_path} is not a reelsearch catalog: {exc}") from None
    finally:
        pool.dispose()
    return None if row is None else str(row[0])
