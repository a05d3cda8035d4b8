"""Checks that stop an import before it replaces a good catalog with a bad one.

Both writers (SQLite's ``CatalogImport`` and ``PostgresCatalogImport``) call
:func:`check_catalog_size` once the new catalog's size is known and before
anything is swapped in: raising there rolls the whole import back, so the old
catalog stays intact and keeps being served. Importers call
:func:`check_kinds_found` once they have read a file that a ``--kinds``
filter applied to.

The failures are :class:`ImportRefused` (an ``ImportFailed``), so the command
line prints them as "import failed and was rolled back; the catalog is
unchanged" with the reason and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from reelsearch.catalog.records import ImportReport
from reelsearch.config_checks import ENV_PREFIX
from reelsearch.errors import ImportFailed


class ImportRefused(ImportFailed):
    """The import read fine but its result would harm the catalog, so it was not applied."""


def check_catalog_size(report: ImportReport, *, before: int, after: int, max_shrink: float) -> None:
    """Refuse an empty new catalog, or one ``max_shrink`` (a share) smaller than ``before``.

    ``after`` counts the movies the catalog would hold once committed;
    ``before`` those it holds now. ``max_shrink`` = 1.0 allows any shrink but
    not an empty catalog: an import that found no movie is always a mistake.
    """
    if after == 0:
        raise ImportRefused(
            f"no movies to import from {report.source}: {report.rows_read:,} rows read, "
            f"{report.bad_rows:,} bad, none kept. Check the file and any --kinds filter."
        )
    if before == 0 or after >= before:
        return
    shrink = 1.0 - after / before
    if shrink > max_shrink:
        raise ImportRefused(
            f"the import would shrink the catalog from {before:,} to {after:,} movies "
            f"(-{shrink:.0%}; at most -{max_shrink:.0%} allowed by "
            f"{ENV_PREFIX}IMPORT_MAX_SHRINK). If that is what you want, run the import "
            "again with --allow-shrink."
        )


def check_kinds_found(wanted: Iterable[str] | None, seen: Mapping[str, int], *, file: str) -> None:
    """Refuse a ``--kinds`` value that no row of ``file`` holds, listing the kinds it does hold.

    ``seen`` counts the rows of each kind in the file (before filtering).
    """
    if wanted is None:
        return
    missing = sorted(set(wanted) - set(seen))
    if not missing:
        return
    held = ", ".join(f"{kind} ({count:,})" for kind, count in sorted(seen.items()))
    hints = []
    for kind in missing:
        nearest = difflib.get_close_matches(kind, list(seen), n=1, cutoff=0.6)
        if nearest:
            hints.append(f"{kind!r} -> {nearest[0]!r}?")
    hint = f" Did you mean: {', '.join(hints)}" if hints else ""
    raise ImportRefused(
        f"--kinds {', '.join(repr(kind) for kind in missing)}: no title in {file} has that "
        f"kind. The file holds: {held or 'no titles'}.{hint}"
    )
