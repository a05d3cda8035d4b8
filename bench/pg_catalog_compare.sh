#!/bin/bash
# usage: bench/pg_catalog_compare.sh DB1 DB2: checksums of each table's rows, the index and
# constraint definitions, statistics targets and GIN options of two PostgreSQL catalogs
for db in "$@"; do
  echo "== $db"
  psql -h 127.0.0.1 -U postgres -At $db <<'SQL'
SELECT 'movies', count(*), md5(string_agg(md5(row(id, source_key, title, original_title, year, runtime_min, rating, votes, genres, genre_mask, kind, norm_title, word_key, alt_norm_titles, title_tsv::text, search_rank, import_id)::text), '' ORDER BY id)) FROM movies;
SELECT 'movies_phys', md5(string_agg(id::text, ',' ORDER BY ctid)) FROM movies;
SELECT 'alt_titles', count(*), md5(string_agg(md5(a::text), '' ORDER BY movie_id, title)) FROM alt_titles a;
SELECT 'movie_genres', count(*), md5(string_agg(md5(a::text), '' ORDER BY genre_bit, search_rank)) FROM movie_genres a;
SELECT 'title_words', count(*), md5(string_agg(md5(a::text), '' ORDER BY word)) FROM title_words a;
SELECT 'genres', md5(string_agg(a::text, '' ORDER BY bit)) FROM genres a;
SELECT 'word_index', md5(string_agg(md5(data), '' ORDER BY part)) FROM word_index;
SELECT 'meta', string_agg(key || '=' || CASE WHEN key IN ('imported_at','import_seconds') OR key LIKE '%seconds%' THEN '*' ELSE value END, ' ' ORDER BY key) FROM catalog_meta;
SELECT 'indexes', md5(string_agg(indexname || indexdef, ';' ORDER BY indexname)) FROM pg_indexes WHERE schemaname='public';
SELECT 'constraints', md5(string_agg(conname || pg_get_constraintdef(oid), ';' ORDER BY conname)) FROM pg_constraint WHERE connamespace='public'::regnamespace;
SELECT 'stats_target', attname, attstattarget FROM pg_attribute WHERE attrelid='movies'::regclass AND attstattarget >= 0;
SELECT 'relopts', relname, reloptions FROM pg_class WHERE relname LIKE 'ix_movies_title_tsv';
SQL
done
