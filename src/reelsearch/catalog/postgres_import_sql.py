"""The SQL of the PostgreSQL import (``catalog/postgres_writer.py`` streams the rows in,
``catalog/postgres_finish.py`` builds the catalog from them), in the order it runs.

COPY streams the importer's rows into temporary tables; the statements below
turn them into the staging copies of the catalog tables (ids kept by source
key, ranks, alternate titles, the movies written once in rank order, genres),
which ``catalog/postgres_swap.py`` then indexes and swaps in.
"""

from __future__ import annotations

from reelsearch.catalog.titles import alt_norm_titles_sql
from reelsearch.search.columns import COLUMNS
from reelsearch.search.filter_columns import GENRE_MASK_COLUMN

TEMP_TABLES = """
CREATE TEMP TABLE import_movies (
    seq BIGINT NOT NULL, source_key TEXT COLLATE "C" NOT NULL, title TEXT NOT NULL,
    original_title TEXT, year BIGINT, runtime_min BIGINT, rating DOUBLE PRECISION,
    votes BIGINT NOT NULL, genres TEXT NOT NULL, genre_mask BIGINT NOT NULL,
    kind TEXT NOT NULL, norm_title TEXT NOT NULL, word_key TEXT NOT NULL,
    title_tsv TEXT NOT NULL, rated BOOLEAN NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_ratings (
    seq BIGINT NOT NULL, source_key TEXT COLLATE "C" NOT NULL, rating DOUBLE PRECISION,
    votes BIGINT NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_alt_titles (
    source_key TEXT COLLATE "C" NOT NULL, title TEXT NOT NULL, norm_title TEXT NOT NULL
) ON COMMIT DROP;
"""
MOVIE_COLUMNS = (
    "seq", "source_key", "title", "original_title", "year", "runtime_min", "rating", "votes",
    "genres", "genre_mask", "kind", "norm_title", "word_key", "title_tsv", "rated",
)  # fmt: skip
# Binary COPY: half the client CPU of text COPY and less parsing on the server
# (measured on 1 M rows: 0.63 s vs 1.20 s client CPU). The tsvector travels as
# text and is parsed once, when the movie is written (binary tsvector would
# have to be packed in Python). Integers travel as int8: psycopg's binary int4
# dumper wraps 2**32 + 5 to 5 without a word, while the INSERT into the
# INTEGER columns range-checks ("integer out of range" fails the import).
COPY_MOVIES = f"COPY import_movies ({', '.join(MOVIE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
MOVIE_TYPES = (
    "int8", "text", "text", "text", "int8", "int8", "float8", "int8", "text", "int8", "text",
    "text", "text", "text", "bool",
)  # fmt: skip
COPY_RATINGS = "COPY import_ratings (seq, source_key, rating, votes) FROM STDIN (FORMAT BINARY)"
RATING_TYPES = ("int8", "text", "float8", "int8")
COPY_ALT_TITLES = (
    "COPY import_alt_titles (source_key, title, norm_title) FROM STDIN (FORMAT BINARY)"
)
ALT_TITLE_TYPES = ("text", "text", "text")

# A source key read twice: its last row counts, in the place of its first (so
# ids follow first appearances), as with SQLite's upsert.
DROP_EARLIER_DUPLICATES = """
WITH dups AS (
    SELECT source_key, min(seq) AS first, max(seq) AS last FROM import_movies
    GROUP BY source_key HAVING count(*) > 1
), dropped AS (
    DELETE FROM import_movies AS m USING dups AS d
    WHERE m.source_key = d.source_key AND m.seq < d.last
)
UPDATE import_movies AS m SET seq = d.first
FROM dups AS d WHERE m.source_key = d.source_key AND m.seq = d.last
"""
# The new catalog in narrow rows: id, rank and what movie_genres needs, so the
# sorts for ids and ranks move a few bytes per movie, not whole titles.
# Staged ratings replace a movie's own (a movie they lack has none), as in
# CatalogImport; updated_at moves only when what an importer reads changed.
# New movies take the ids after the identity sequence's last, in arrival order.
RANK_MOVIES = """
CREATE TEMP TABLE import_ranked ON COMMIT DROP AS
WITH ratings AS (
    SELECT DISTINCT ON (source_key) source_key, rating, votes
    FROM import_ratings ORDER BY source_key, seq DESC
), incoming AS MATERIALIZED (  -- narrow rows into the sorts below
    SELECT m.seq, o.id AS old_id, m.genre_mask, e.rating, e.votes,
        CASE WHEN (o.title, o.original_title, o.year, o.runtime_min, o.rating, o.votes,
                   o.genres, o.kind)
                  IS NOT DISTINCT FROM (m.title, m.original_title, m.year, m.runtime_min,
                                        e.rating, e.votes, m.genres, m.kind)
             THEN o.updated_at ELSE {now} END AS updated_at
    FROM import_movies AS m
    LEFT JOIN ratings AS r USING (source_key)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN m.rated THEN r.rating ELSE m.rating END AS rating,
               CASE WHEN m.rated THEN coalesce(r.votes, 0) ELSE m.votes END AS votes
    ) AS e
    LEFT JOIN movies AS o ON o.source_key = m.source_key
), identified AS (
    SELECT seq, genre_mask, rating, votes, updated_at,
        coalesce(old_id, {last_id} + row_number() OVER (PARTITION BY old_id IS NULL ORDER BY seq))
            AS id
    FROM incoming
    {kept}
)
SELECT seq, id, genre_mask, rating, votes, updated_at,
    row_number() OVER (ORDER BY votes DESC, rating DESC NULLS LAST, id)::integer AS search_rank
FROM identified
"""
# replace=False: movies this import did not see stay as they were.
KEPT_RANKS = """
    UNION ALL
    SELECT NULL, o.genre_mask, o.rating, o.votes, o.updated_at, o.id
    FROM movies AS o
    WHERE NOT EXISTS (SELECT FROM import_movies AS m WHERE m.source_key = o.source_key)
"""
# The new catalog's movies by source key: alternate titles find their movie
# here, and the one equal to its title is left out of its document.
CATALOG_TITLES = """
CREATE TEMP TABLE import_titles ON COMMIT DROP AS
SELECT k.id, m.source_key, m.norm_title
FROM import_ranked AS k JOIN import_movies AS m USING (seq)
{kept}
"""
KEPT_TITLES = """
UNION ALL
SELECT o.id, o.source_key, o.norm_title
FROM import_ranked AS k JOIN movies AS o ON o.id = k.id
WHERE k.seq IS NULL
"""
KEPT_ALT_TITLES = """
INSERT INTO alt_titles_staging (movie_id, title, norm_title, region, language)
SELECT movie_id, title, norm_title, region, language FROM alt_titles
"""
# Unknown keys drop out in the join; a title already there is kept (INSERT OR IGNORE).
INSERT_ALT_TITLES = """
INSERT INTO alt_titles_staging (movie_id, title, norm_title)
SELECT DISTINCT ON (t.id, a.title) t.id, a.title, a.norm_title
FROM import_alt_titles AS a JOIN import_titles AS t USING (source_key)
{not_kept}
ORDER BY t.id, a.title
"""
NOT_KEPT_ALT_TITLE = (
    "WHERE NOT EXISTS (SELECT FROM alt_titles AS o WHERE o.movie_id = t.id AND o.title = a.title)"
)
# Each movie's alternates as catalog/titles.py joins them, before the movies
# are written, so every row is written once with its final title_tsv.
ALT_NORM_TITLES = f"""
CREATE TEMP TABLE import_alt_norms ON COMMIT DROP AS
{alt_norm_titles_sql("alt_titles_staging", "import_titles")}
"""
# The documents of the movies with alternates (kept ones too: import_titles has
# them), for Python to write their tsvectors (catalog/tsvector.py) while the
# server fills movie_genres. title_tsvector(), the SQL twin, took 4.7 s of the
# server's 8.4 s for the 248,217 such movies of a 1 M import; Python takes ~1 s,
# on the other core.
ALT_DOCUMENTS = """
SELECT x.id, t.norm_title, x.alt_norm_titles
FROM import_alt_norms AS x JOIN import_titles AS t USING (id)
"""
ALT_TSVECTORS = """
CREATE TEMP TABLE import_alt_tsv (id BIGINT NOT NULL, title_tsv TEXT NOT NULL) ON COMMIT DROP
"""
COPY_ALT_TSVECTORS = "COPY import_alt_tsv (id, title_tsv) FROM STDIN (FORMAT BINARY)"
ALT_TSVECTOR_TYPES = ("int8", "text")
# The wide rows, written once, in rank order (popular titles share pages).
# A movie without alternates keeps the tsvector Python wrote with its row; the
# others the one Python wrote from ALT_DOCUMENTS.
INSERT_MOVIES = """
INSERT INTO movies_staging (id, source_key, title, original_title, year, runtime_min, rating,
    votes, genres, genre_mask, kind, norm_title, word_key, alt_norm_titles, title_tsv,
    search_rank, import_id, updated_at)
SELECT k.id, m.source_key, m.title, m.original_title, m.year, m.runtime_min, k.rating,
    k.votes, m.genres, m.genre_mask, m.kind, m.norm_title, m.word_key, x.alt_norm_titles,
    CASE WHEN x.id IS NULL THEN m.title_tsv ELSE v.title_tsv END::tsvector,
    k.search_rank, {import_id}, k.updated_at
FROM import_ranked AS k JOIN import_movies AS m USING (seq)
LEFT JOIN import_alt_norms AS x ON x.id = k.id
LEFT JOIN import_alt_tsv AS v ON v.id = k.id
{kept}
ORDER BY search_rank
"""
KEPT_MOVIES = """
UNION ALL
SELECT o.id, o.source_key, o.title, o.original_title, o.year, o.runtime_min, o.rating,
    o.votes, o.genres, o.genre_mask, o.kind, o.norm_title, o.word_key, x.alt_norm_titles,
    CASE WHEN x.id IS NULL THEN o.title_tsv ELSE v.title_tsv::tsvector END,
    k.search_rank, o.import_id, o.updated_at
FROM import_ranked AS k JOIN movies AS o ON o.id = k.id
LEFT JOIN import_alt_norms AS x ON x.id = k.id
LEFT JOIN import_alt_tsv AS v ON v.id = k.id
WHERE k.seq IS NULL
"""
# Genre -> movies. A catalog has few distinct masks: their bits are worked out
# once each, then found per movie by a hash lookup. No ORDER BY: the table is
# only read through its primary key, and sorting 1.7 M pairs took 2 s.
INSERT_MOVIE_GENRES = """
WITH mask_bits AS (
    SELECT masks.genre_mask, g.bit
    FROM (SELECT DISTINCT genre_mask FROM import_ranked) AS masks
    JOIN genres AS g ON masks.genre_mask & (1::bigint << g.bit) <> 0
)
INSERT INTO movie_genres_staging (genre_bit, search_rank)
SELECT b.bit, k.search_rank
FROM import_ranked AS k JOIN mask_bits AS b USING (genre_mask)
"""
# Every title-index document, for title_words: every word with the number of
# titles holding it (fts5vocab's "doc" on SQLite). Counted in Python while the
# server builds indexes (``postgres_finish._title_words``): ts_stat() over the
# tsvectors took 3.4 s of the server's time at 1 M titles (unnest + GROUP BY, 2 s).
# The title postings are numbered from the same split rows (``title_tokens.py``).
# Every staged movie's hit row, as a page reads it (search/hit_rows.py).
STAGED_HIT_ROWS = f"SELECT {COLUMNS}, {GENRE_MASK_COLUMN} FROM movies_staging AS m"
COPY_TITLE_WORDS = "COPY title_words_staging (word, docs) FROM STDIN (FORMAT BINARY)"
