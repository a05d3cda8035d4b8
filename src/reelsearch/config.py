"""One typed settings object, built once at startup and passed down.

Nothing else in reelsearch reads the environment. Every value comes from a
``REELSEARCH_*`` variable (or its default), is cast once here, and a bad value
fails at startup with a message naming the key.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import parse_qsl, urlencode

from reelsearch.config_checks import CACHE_LEVELS, ENV_PREFIX, check_settings
from reelsearch.errors import ConfigError

# Variables under the prefix that belong to the test suite, not to the service.
NOT_SETTINGS_PREFIXES = (ENV_PREFIX + "TEST_",)


class QueryLimits(TypedDict):
    """``parse_search``'s and ``parse_autocomplete``'s limits, as a deployment sets them:
    every parser of a request passes them (``**settings.query_limits``), so none falls
    back to the defaults and answers what the route would refuse."""

    max_query_chars: int
    max_query_words: int


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service, with the reason for its default."""

    # The catalog. A SQLite file in the working directory is the embedded default;
    # postgresql+asyncpg://user@host:port/db selects PostgreSQL.
    database_url: str = "sqlite:///./reelsearch.db"

    # PostgreSQL pool, per worker process (SQLAlchemy's AsyncAdaptedQueuePool of
    # asyncpg connections, checked out behind a FIFO gate of size + overflow slots:
    # docs/decisions/0004-postgres-pool.md). Total connections = workers x
    # (size + overflow), which must stay under the server's max_connections
    # (README: sizing the pool).
    # Defaults from the pool-size curve in bench/RESULTS.md (2 workers, one
    # 2-core host): throughput is flat from 1 to 16 connections per worker on
    # the sample and falls past 2 at 1 M titles, while p99 grows with the pool
    # (queueing inside PostgreSQL instead of at the gate). Rule of thumb:
    # workers x pool size = about 2 x the database host's cores.
    db_pool_size: int = 2
    # Extra connections opened for bursts and closed when returned. Under
    # sustained load they would be opened and closed per request: 0.
    db_max_overflow: int = 0
    # Seconds a request waits for a free connection (or to connect) before it is
    # refused (503).
    db_pool_timeout: float = 5.0
    # Connections older than this are replaced on checkout (seconds; -1 never):
    # bounds the memory a long-lived backend accumulates and survives failovers.
    db_pool_recycle: float = 1800.0
    # Test each connection with a round trip on checkout. Off: it taxes every
    # request against a rare event (a server restart) and cost half or more of
    # the throughput in 0004's measurements. Without it, the first read that
    # finds its connection dead has every connection opened before it replaced,
    # and runs again on a fresh one.
    db_pool_pre_ping: bool = False
    # Hand out the most recently used connection first: the rest stay idle and
    # can time out, and hot connections keep their caches warm.
    db_pool_lifo: bool = True

    # SQLite read pool: one connection per thread that may run a search at once.
    # Two cores and a GIL make more than a few pointless; 4 lets I/O overlap.
    db_read_pool_size: int = 4
    # mmap the catalog so hot pages are read without a syscall; 256 MiB covers
    # a 1 M-title catalog. 0 disables.
    sqlite_mmap_bytes: int = 256 * 1024 * 1024
    # Page cache per connection in KiB (negative in PRAGMA terms); 64 MiB.
    sqlite_cache_kib: int = 64 * 1024
    # Page cache of the import's writer connection in KiB: 512 MiB keeps the
    # indexes of a 1 M-title bulk load in memory.
    sqlite_import_cache_kib: int = 512 * 1024
    # How long a writer waits for another writer's lock before failing.
    sqlite_busy_timeout_ms: int = 5000

    # Run catalog reads in a thread pool (True) or on the event loop (False).
    # Threads keep one slow query from stalling the worker's other requests;
    # inline saves the hand-off, and a sub-millisecond SQLite read holds the
    # GIL for most of its time anyway. Inline measured 1.35x the throughput
    # with a lower p99 (docs/decisions/0003-catalog-reads-inline.md).
    search_in_threads: bool = False
    # Answer the common match from the title postings the import stored (beside a SQLite
    # catalog; in a PostgreSQL one, copied once per host: 0037), each word's titles as rank
    # arrays, mapped read-only and shared by the workers (search/postings.py, decisions
    # 0031 and 0033), for catalogs of at most this many titles (0: never; the title
    # index alone). On the sample: 24 % fewer instructions per warm
    # search, and a 2-worker server's PSS unchanged (the pages are the page cache's);
    # at 1 M titles -30 % and server CPU per cold request -28 % over HTTP. Larger
    # catalogs were not measured: FTS5 alone above 1,000,000.
    title_postings_max_movies: int = 1_000_000

    # HTTP serving.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    # How often a server checks whether an import changed the catalog.
    catalog_poll_seconds: float = 1.0
    # Connections each worker serves at once (granian's backpressure); more
    # wait in the listen backlog. A slow client holds one until it has sent
    # its request head, so this many slow clients per worker lock others out
    # (bench/RESULTS.md, "Reliability (issue 14)"); each costs a file
    # descriptor and a few KiB, so it is set high. Keep workers x this under
    # the process's file-descriptor limit (serve raises the soft limit to the hard one).
    connections_per_worker: int = 4096
    # Connections the kernel queues before granian accepts them (capped by
    # net.core.somaxconn).
    listen_backlog: int = 2048
    # Seconds a client has to send a whole request head (and, on a kept-alive
    # connection, to start the next one): slow clients are dropped after it.
    header_timeout: float = 5.0
    # Seconds a stopping worker gets to finish the requests in flight before it is killed.
    shutdown_timeout: float = 30.0
    # Origins allowed to call the API from a browser (CORS), comma-separated,
    # e.g. "https://app.example.com"; "*" allows any. Empty: no CORS headers.
    cors_origins: str = ""
    # Client addresses or networks (comma-separated, e.g. "10.0.0.0/8,127.0.0.1")
    # that see /ready's details (catalog version, movie count) without the
    # admin token. Empty: only the admin token shows them.
    ready_details_from: str = ""
    # Requests per second each client may make on average (0: no limit), and the
    # burst it may spend at once: a token bucket per client (docs/decisions/0010).
    # Costlier requests (facets, broad or deep searches) take 2 or more tokens.
    rate_limit: float = 0.0
    rate_limit_burst: int = 20
    # Addresses or networks of proxies in front (comma-separated) whose
    # X-Forwarded-For names the client; from anyone else that header is ignored.
    trusted_proxies: str = ""
    # API keys, stored hashed: "id:sha256hex:search+admin,..." (make one with
    # `python -m reelsearch.keytool new ID`). Sent as X-API-Key; a key names
    # the client for rate limits and signs scoped search tokens.
    api_keys: str = ""
    # Refuse /v1/ requests without a valid key or scoped token (401).
    require_api_key: bool = False
    # Redis shared by every process and host (redis://HOST:PORT/DB): the result
    # cache's L2, rate-limit buckets and web sessions live there when set, else
    # in each worker process (L1 cache, buckets), on disk (L3) and in a SQLite
    # file (sessions).
    redis_url: str = ""

    # Search limits: a query longer than this is refused, not truncated. Both
    # are checked again after normalization, which can multiply a query (one
    # U+FDFA is 18 characters and 4 words), as q's words are what costs.
    max_query_chars: int = 256
    # Most words (searched for plus excluded) a query may have after
    # normalization: each is a slot of the plan and a term of every index
    # expression. Titles people search by are far shorter.
    max_query_words: int = 32
    # A search still running after this many milliseconds is stopped (the
    # SQLite statement interrupted, the PostgreSQL one cancelled) and answered
    # 503 with Retry-After, so no request holds a worker longer. Cold searches
    # take milliseconds; only hostile or pathological ones come near it.
    search_deadline_ms: int = 500
    # `total` is counted exactly up to this many hits, then reported as a floor
    # (total_is_exact=false): counting all 20 k titles matching "th*" on every
    # keystroke would cost more than finding the ten to show.
    max_exact_total: int = 1_000

    # Relevance rules (search/rulebook.py): synonym and stop-word files, read at
    # start and again whenever their modification time changes (checked at
    # most every catalog_poll_seconds), so editing one needs no restart.
    # Empty: the lists bundled in reelsearch/search/rules/.
    synonyms_path: str = ""
    stopwords_path: str = ""

    # Token for admin-only features (explain=true on /v1/search), sent as
    # "Authorization: Bearer TOKEN". Empty: those features are refused (403).
    admin_token: str = ""

    # Importers commit nothing until the end; rows go to SQLite in batches of this size.
    import_batch_size: int = 10_000
    # An import that would leave the catalog smaller by more than this share of
    # its movies is refused before the swap (catalog/guards.py): a truncated
    # download or a --kinds typo must not replace a full catalog. 1.0 allows any
    # shrink (what `reelsearch import --allow-shrink` sets); an empty import is
    # always refused.
    import_max_shrink: float = 0.5
    # The documents API (PUT/DELETE /v1/movies/{source}:{id}, POST /v1/movies/bulk):
    # lines one bulk request may carry. All are applied in one transaction, which
    # holds the catalog's write lock while it runs (about 0.1 s per 1,000 movies).
    documents_bulk_max_lines: int = 10_000
    # How long a write waits for the catalog's write lock (an import or another
    # writer holds it) before it is refused with a 503 and Retry-After.
    write_lock_timeout_ms: int = 5_000

    # Observability (reelsearch/observability/). Log lines: "json" (one JSON
    # object a line, for collectors), "console" (readable on a terminal) or
    # "auto" (console when stderr is a terminal, else json).
    log_format: str = "auto"
    log_level: str = "INFO"
    # One line per request (method, route, status, duration, request id).
    access_log: bool = True
    # A request slower than this is logged with its parameters, stages and
    # query plans (milliseconds; 0: off). A search takes a few ms: 250 ms is
    # a request something went wrong with, not a busy one.
    slow_request_ms: float = 250.0
    # Prometheus metrics at /metrics. Off only to measure what they cost.
    metrics_enabled: bool = True
    # How often each worker samples what is read, not counted: process CPU,
    # memory, file descriptors, event-loop lag, pool and catalog state.
    metrics_sample_seconds: float = 1.0
    # (/ready also reports the Redis of redis_url above, when it is set.)
    # Web page sessions (http/sessions.py). Stored in Redis when redis_url is
    # set, else in this SQLite file; empty: "<catalog>-sessions.db" beside a
    # SQLite catalog, "./reelsearch-sessions.db" with a PostgreSQL one.
    session_path: str = ""
    # Sliding expiry: a session unused this long is gone (30 days).
    session_max_age: float = 30 * 24 * 3600.0
    # Mark the cookie Secure even on plain HTTP (set it behind a TLS proxy);
    # requests that arrive over https get Secure regardless.
    session_cookie_secure: bool = False
    # How often expired sessions are deleted from the SQLite store.
    session_cleanup_seconds: float = 3600.0

    # Result cache (reelsearch/cache, docs/decisions/0011-result-cache.md).
    # "auto": memory + Redis when redis_url is set, else memory + disk; "off"
    # (every search computed: cold benchmarks); or a list of levels such as
    # "memory", "memory,disk", "memory,redis,disk".
    cache: str = "auto"
    # A Redis call waits at most this long (seconds), then the level is skipped
    # for redis_retry_seconds and the request goes on without it.
    redis_timeout: float = 0.1
    redis_retry_seconds: float = 1.0
    redis_pool_size: int = 16
    # Single-flight across processes: the Redis lock a computing process holds. Others
    # wait for its answer at most this long, then compute themselves (it died or is slow).
    cache_lock_seconds: float = 2.0
    # Prefix of every Redis key and channel: deployments may share one Redis.
    cache_namespace: str = "rs"
    # Byte bounds per level. L1 is per worker process; L3 per host (shared by
    # its workers). L2's bound is Redis's own maxmemory (a server setting).
    cache_memory_bytes: int = 64 * 1024 * 1024
    cache_disk_bytes: int = 256 * 1024 * 1024
    # Empty: "<catalog file>.cache" beside a SQLite catalog, else a folder in the
    # temp directory named after the database URL.
    cache_disk_path: str = ""
    # An entry is fresh for cache_ttl (+/- cache_ttl_jitter of it, so entries
    # made together do not expire together), then served stale for up to
    # cache_stale_seconds while one background refresh runs.
    cache_ttl: float = 300.0
    cache_ttl_jitter: float = 0.1
    cache_stale_seconds: float = 60.0
    # Longest time an entry stays in each level (also bounded by freshness + staleness).
    cache_memory_ttl: float = 3600.0
    cache_redis_ttl: float = 3600.0
    cache_disk_ttl: float = 86400.0
    # L1 admission: "tinylfu" (a new entry must be asked for more often than the
    # one it would evict; bench/zipf_policies.py) or "lru" (admit everything).
    cache_admission: str = "tinylfu"
    # A search no level holds and this process has not seen before (L1's count is 1)
    # is computed and sent as with the cache off, nothing made or stored; its second
    # sighting is stored (decision 0039). Embedded levels only: with Redis, misses
    # are stored as before (the cross-process single-flight).
    cache_doorkeeper: bool = True
    # After start and after each import, recompute this many of the most asked
    # searches in the background, using at most this share of one core.
    cache_warm_top: int = 200
    cache_warm_cpu_share: float = 0.25
    # HTTP caching of search answers: Cache-Control max-age and
    # stale-while-revalidate for browsers and proxies in front.
    http_max_age: int = 60
    http_stale_while_revalidate: int = 300
    # Bodies shorter than this are sent uncompressed: the headers cost more.
    compress_min_bytes: int = 512

    # PostgreSQL: where a host keeps its copy of the catalog's word index, which
    # its workers map read-only (docs/decisions/0008). Empty: a directory
    # "reelsearch-word-index" in the system's temporary directory.
    word_index_cache_dir: str = ""

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Build settings from ``REELSEARCH_*`` variables; ``overrides`` win over both.

        A ``REELSEARCH_*`` variable that names no setting is an error: a typo
        would otherwise be ignored without a word.
        """
        check_env_names(environ, [field.name for field in fields(cls)])
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = ENV_PREFIX + field.name.upper()
            if key in environ:
                values[field.name] = _cast(key, environ[key], field.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def query_limits(self) -> QueryLimits:
        """The search limits, as keyword arguments of the query parsers."""
        return {"max_query_chars": self.max_query_chars, "max_query_words": self.max_query_words}

    @property
    def cache_levels(self) -> tuple[str, ...]:
        """The result-cache levels to run, fastest first (empty: no cache)."""
        if self.cache == "off":
            return ()
        if self.cache == "auto":
            return ("memory", "redis") if self.redis_url else ("memory", "disk")
        chosen = {part.strip() for part in self.cache.split(",")}
        return tuple(level for level in CACHE_LEVELS if level in chosen)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``, from the scheme of ``database_url``."""
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @property
    def postgres_dsn(self) -> str:
        """``database_url`` as libpq (psycopg) takes it: ``postgresql://...?sslmode=``."""
        return "postgresql://" + _tls_spelled(self.database_url, "sslmode").split("://", 1)[1]

    @property
    def asyncpg_url(self) -> str:
        """``database_url`` for SQLAlchemy's asyncpg dialect, which says ``ssl=``."""
        return _tls_spelled(self.database_url, "ssl")

    @property
    def sync_database_url(self) -> str:
        """The SQLAlchemy URL for blocking admin work (migrations, imports)."""
        if self.backend == "postgresql":
            return "postgresql+psycopg://" + self.postgres_dsn.split("://", 1)[1]
        return f"sqlite:///{self.sqlite_path}"

    @property
    def word_index_cache(self) -> Path:
        """The directory of ``word_index_cache_dir``, or its default."""
        if self.word_index_cache_dir:
            return Path(self.word_index_cache_dir)
        return Path(tempfile.gettempdir()) / "reelsearch-word-index"

    @property
    def sqlite_path(self) -> str:
        """The file path inside ``database_url`` (``sqlite:///./x.db`` -> ``./x.db``)."""
        _, _, rest = self.database_url.partition(":///")
        return rest or ":memory:"


def check_env_names(environ: Mapping[str, str], names: Iterable[str] = ()) -> None:
    """Fail on the first ``REELSEARCH_*`` variable that is not a setting, naming the nearest."""
    known = {ENV_PREFIX + name.upper() for name in names or [f.name for f in fields(Settings)]}
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in known or key.startswith(NOT_SETTINGS_PREFIXES):
            continue
        # Compared without the prefix, which every name shares and would make
        # anything look close.
        bare = [name.removeprefix(ENV_PREFIX) for name in sorted(known)]
        nearest = difflib.get_close_matches(key.removeprefix(ENV_PREFIX), bare, n=1, cutoff=0.6)
        hint = f" Did you mean '{ENV_PREFIX}{nearest[0]}'?" if nearest else ""
        raise ConfigError(f"Unknown setting {key!r}: no such REELSEARCH_* variable.{hint}")


def _tls_spelled(url: str, name: str) -> str:
    """``url`` with its TLS option named ``name``: libpq says sslmode, asyncpg says ssl.

    One REELSEARCH_DATABASE_URL serves both drivers (asyncpg for searches,
    psycopg for imports and migrations), so either spelling works.
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url
    pairs = [(name if key in ("ssl", "sslmode") else key, value)
             for key, value in parse_qsl(query, keep_blank_values=True)]  # fmt: skip
    return f"{base}?{urlencode(pairs)}"


def _cast(key: str, raw: str, type_name: Any) -> Any:
    casters: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str,
                                                "bool": _bool}  # fmt: skip
    caster = casters[str(type_name)]
    try:
        return caster(raw)
    except ValueError:
        raise ConfigError(f"Config {key!r} has value {raw!r}. Not a valid {type_name}.") from None


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)
