"""The rules each setting's value must meet, checked once when ``Settings`` is built.

A bad value fails at startup with a message naming its ``REELSEARCH_*`` variable.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from reelsearch.errors import ConfigError

if TYPE_CHECKING:
    from reelsearch.config import Settings

ENV_PREFIX = "REELSEARCH_"
MIN_ADMIN_TOKEN_CHARS = 32
CACHE_LEVELS = ("memory", "redis", "disk")


def check_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` naming the first setting whose value breaks its rule."""
    _require(settings.db_read_pool_size >= 1, "db_read_pool_size", "must be at least 1")
    _require(settings.workers >= 1, "workers", "must be at least 1")
    _require(0 < settings.port < 65536, "port", "must be between 1 and 65535")
    _require(settings.max_query_chars >= 16, "max_query_chars", "must be at least 16")
    _require(settings.max_query_words >= 4, "max_query_words", "must be at least 4")
    _require(settings.search_deadline_ms >= 10, "search_deadline_ms", "must be at least 10")
    _require(settings.title_postings_max_movies >= 0, "title_postings_max_movies",
             "must not be negative (0: never)")  # fmt: skip
    _require(settings.max_exact_total >= 100, "max_exact_total", "must be at least 100")
    _require(settings.import_batch_size >= 1, "import_batch_size", "must be at least 1")
    _require(0 <= settings.import_max_shrink <= 1, "import_max_shrink", "must be between 0 and 1")
    _require(settings.documents_bulk_max_lines >= 1, "documents_bulk_max_lines",
             "must be at least 1")  # fmt: skip
    _require(settings.write_lock_timeout_ms >= 0, "write_lock_timeout_ms", "must not be negative")
    _require(settings.catalog_poll_seconds > 0, "catalog_poll_seconds", "must be positive")
    _require(settings.log_format in ("auto", "json", "console"), "log_format",
             "must be auto, json or console")  # fmt: skip
    _require(settings.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level",
             "must be DEBUG, INFO, WARNING or ERROR")  # fmt: skip
    _require(settings.slow_request_ms >= 0, "slow_request_ms", "must not be negative")
    _require(settings.metrics_sample_seconds > 0, "metrics_sample_seconds", "must be positive")
    _require(
        not settings.redis_url
        or settings.redis_url.startswith(("redis://", "rediss://", "unix://")),
        "redis_url",
        "must be redis://HOST:PORT/DB, rediss://... or unix://PATH",
    )
    _require(settings.session_max_age > 0, "session_max_age", "must be positive")
    _require(settings.session_cleanup_seconds > 0, "session_cleanup_seconds", "must be positive")
    for name in ("sqlite_mmap_bytes", "sqlite_cache_kib", "sqlite_import_cache_kib",
                 "sqlite_busy_timeout_ms"):  # fmt: skip
        _require(getattr(settings, name) >= 0, name, "must not be negative")
    _require(settings.db_pool_size >= 1, "db_pool_size", "must be at least 1")
    _require(settings.db_max_overflow >= 0, "db_max_overflow", "must not be negative")
    _require(settings.db_pool_timeout > 0, "db_pool_timeout", "must be positive")
    _require(settings.connections_per_worker >= 1, "connections_per_worker", "must be at least 1")
    _require(settings.listen_backlog >= 128, "listen_backlog", "must be at least 128")
    _require(0.001 <= settings.header_timeout <= 60, "header_timeout",
             "must be between 0.001 and 60 seconds")  # fmt: skip
    _require(1 <= settings.shutdown_timeout <= 1800, "shutdown_timeout",
             "must be between 1 and 1800 seconds")  # fmt: skip
    for name in ("ready_details_from", "trusted_proxies"):
        try:
            for part in filter(None, (p.strip() for p in getattr(settings, name).split(","))):
                ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise ConfigError(f"Config '{ENV_PREFIX}{name.upper()}': {exc}.") from None
    _require(settings.rate_limit >= 0, "rate_limit", "must not be negative (0: no limit)")
    _require(settings.rate_limit_burst >= 1, "rate_limit_burst", "must be at least 1")
    # A short token can be guessed; 32 characters is what `openssl rand -hex 16` prints.
    _require(not settings.admin_token or len(settings.admin_token) >= MIN_ADMIN_TOKEN_CHARS,
             "admin_token", f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters long "
             "(e.g. from `openssl rand -hex 32`)")  # fmt: skip
    _require(_is_cache_choice(settings.cache), "cache",
             "must be auto, off, or a list of memory, redis, disk")  # fmt: skip
    _require(settings.cache_admission in ("tinylfu", "lru"), "cache_admission",
             "must be tinylfu or lru")  # fmt: skip
    _require(0 <= settings.cache_ttl_jitter < 1, "cache_ttl_jitter", "must be in [0, 1)")
    for name in ("redis_timeout", "redis_retry_seconds", "cache_ttl", "cache_memory_ttl",
                 "cache_lock_seconds",
                 "cache_redis_ttl", "cache_disk_ttl"):  # fmt: skip
        _require(getattr(settings, name) > 0, name, "must be positive")
    for name in ("cache_memory_bytes", "cache_disk_bytes", "cache_stale_seconds",
                 "cache_warm_top", "http_max_age", "http_stale_while_revalidate",
                 "compress_min_bytes"):  # fmt: skip
        _require(getattr(settings, name) >= 0, name, "must not be negative")
    _require(0 < settings.cache_warm_cpu_share <= 1, "cache_warm_cpu_share", "must be in (0, 1]")
    _require(settings.redis_pool_size >= 1, "redis_pool_size", "must be at least 1")
    _require(
        settings.database_url.startswith(("sqlite:", "sqlite+", "postgresql+asyncpg://")),
        "database_url",
        "must be sqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB",
    )


def _is_cache_choice(value: str) -> bool:
    if value in ("auto", "off"):
        return True
    parts = [part.strip() for part in value.split(",")]
    return bool(parts) and all(part in CACHE_LEVELS for part in parts)


def _require(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"Config '{ENV_PREFIX}{name.upper()}' {why}.")
