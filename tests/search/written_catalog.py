"""A private catalog of the small titles, and writes to it through the documents API's
writer: for the tests of what the snapshot maps beside a SQLite catalog (the title
postings, the hit rows) as writes come after the import."""

from __future__ import annotations

from pathlib import Path

from conftest import SMALL_AKAS, SMALL_TITLES, write_imdb
from reelsearch.catalog.documents import Operation
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.search.engine import BlockingSearchEngine


def import_small_catalog(tmp_path: Path, settings: Settings) -> Path:
    """The small titles imported (IMDb files) into ``settings``' SQLite catalog; its path."""
    files = write_imdb(tmp_path / "dump", SMALL_TITLES, SMALL_AKAS)
    import_imdb(settings, list(files.values()))
    return Path(settings.sqlite_path)


def write(
    engine: BlockingSearchEngine, settings: Settings, *operations: Operation, reload: bool = True
) -> None:
    """Write ``operations`` to ``settings``' catalog; then ``engine`` reloads its snapshot,
    as its poller would (``reload``), or keeps the one it has."""
    writer = CatalogWriter(settings)
    engine.run(lambda _: writer.write(list(operations)))
    if reload:
        assert engine.refresh_if_changed()
