#!/bin/bash
# usage: bench/pg_import_run.sh before|after DB [SRC_DIR]
# A fresh database DB, then the 1 M-title import with per-phase figures (bench/pg_import_phases.py).
# "before" runs another checkout's code: set BEFORE_SRC (default /tmp/pgimport-before/src).
set -e
which=$1; db=$2
S=${3:-/tmp/shared/imdb1m_src}
here=$(cd "$(dirname "$0")" && pwd)
dropdb -h 127.0.0.1 -U postgres --if-exists "$db"; createdb -h 127.0.0.1 -U postgres "$db"
export PROF_DSN="postgresql://postgres@127.0.0.1:5432/$db"
if [ "$which" = before ]; then export PYTHONPATH=${BEFORE_SRC:-/tmp/pgimport-before/src}; fi
echo "== $which $db start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "time: %e s wall, %U user + %S sys, max RSS %M KB" \
  python "$here/pg_import_phases.py" --quiet --database-url "postgresql+asyncpg://postgres@127.0.0.1:5432/$db" \
  import imdb "$S/title.basics.tsv.gz" "$S/title.ratings.tsv.gz" "$S/title.akas.tsv.gz"
echo "== end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
