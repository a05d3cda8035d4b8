"""Settings: REELSEARCH_* environment parsing and validation."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from reelsearch.config import Settings
from reelsearch.config_checks import ENV_PREFIX
from reelsearch.errors import ConfigError
from reelsearch.search.backends import open_blocking_engine


def test_defaults_without_environment() -> None:
    """With no REELSEARCH_* variables every setting has its documented default."""
    assert Settings() == Settings.from_env({})
    settings = Settings.from_env({"PATH": "/bin", "PORT": "1"})
    assert ("sqlite:///./reelsearch.db", 8000, 4, 256) == (
        settings.database_url,
        settings.port,
        settings.db_read_pool_size,
        settings.max_query_chars,
    )


def test_every_setting_has_an_environment_variable() -> None:
    """Each field is read from REELSEARCH_<FIELD> and cast to the field's type."""
    environ = {
        "REELSEARCH_DATABASE_URL": "sqlite:////srv/movies.db",
        "REELSEARCH_DB_READ_POOL_SIZE": "8",
        "REELSEARCH_SQLITE_MMAP_BYTES": "0",
        "REELSEARCH_SQLITE_CACHE_KIB": "1024",
        "REELSEARCH_SQLITE_BUSY_TIMEOUT_MS": "100",
        "REELSEARCH_HOST": "0.0.0.0",
        "REELSEARCH_PORT": "9000",
        "REELSEARCH_WORKERS": "3",
        "REELSEARCH_CATALOG_POLL_SECONDS": "0.25",
        "REELSEARCH_MAX_QUERY_CHARS": "64",
        "REELSEARCH_MAX_EXACT_TOTAL": "500",
        "REELSEARCH_IMPORT_BATCH_SIZE": "10",
    }
    settings = Settings.from_env(environ)
    assert {
        "database_url": "sqlite:////srv/movies.db",
        "db_read_pool_size": 8,
        "sqlite_mmap_bytes": 0,
        "sqlite_cache_kib": 1024,
        "sqlite_busy_timeout_ms": 100,
        "host": "0.0.0.0",
        "port": 9000,
        "workers": 3,
        "catalog_poll_seconds": 0.25,
        "max_query_chars": 64,
        "max_exact_total": 500,
        "import_batch_size": 10,
    } == {key: getattr(settings, key) for key in (k.lower()[len(ENV_PREFIX) :] for k in environ)}
    assert isinstance(settings.catalog_poll_seconds, float)
    # Every field can be set this way (a new field with an unsupported type would fail here).
    for field in fields(Settings):
        default = getattr(Settings(), field.name)
        value = "sqlite:///other.db" if field.name == "database_url" else str(default)
        expected = value if field.name == "database_url" else default
        assert expected == getattr(
            Settings.from_env({ENV_PREFIX + field.name.upper(): value}), field.name
        ), field.name


def test_overrides_win_and_none_is_ignored() -> None:
    """Keyword overrides beat the environment; an override of None keeps the env value."""
    environ = {"REELSEARCH_PORT": "9000", "REELSEARCH_HOST": "0.0.0.0"}
    settings = Settings.from_env(environ, port=9100, host=None)
    assert (9100, "0.0.0.0") == (settings.port, settings.host)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("REELSEARCH_PORT", "eighty"),
        ("REELSEARCH_PORT", "80.5"),
        ("REELSEARCH_PORT", ""),
        ("REELSEARCH_WORKERS", "2 workers"),
        ("REELSEARCH_DB_READ_POOL_SIZE", "1e3"),
        ("REELSEARCH_CATALOG_POLL_SECONDS", "soon"),
        ("REELSEARCH_MAX_EXACT_TOTAL", "10k"),
    ],
)
def test_unparsable_value_names_key_and_value(key: str, raw: str) -> None:
    """A value that is not of the field's type fails with the key and the value in the message."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({key: raw})
    assert key in str(info.value)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("REELSEARCH_PORT", "0"),
        ("REELSEARCH_PORT", "65536"),
        ("REELSEARCH_WORKERS", "0"),
        ("REELSEARCH_DB_READ_POOL_SIZE", "0"),
        ("REELSEARCH_MAX_QUERY_CHARS", "15"),
        ("REELSEARCH_MAX_EXACT_TOTAL", "99"),
        ("REELSEARCH_IMPORT_BATCH_SIZE", "0"),
        ("REELSEARCH_CATALOG_POLL_SECONDS", "0"),
        ("REELSEARCH_CATALOG_POLL_SECONDS", "-1"),
        ("REELSEARCH_CATALOG_POLL_SECONDS", "nan"),
        ("REELSEARCH_DATABASE_URL", "postgresql://localhost/movies"),
        ("REELSEARCH_DATABASE_URL", "mysql://localhost/movies"),
        ("REELSEARCH_DATABASE_URL", "./movies.db"),
        ("REELSEARCH_DB_POOL_SIZE", "0"),
        ("REELSEARCH_DB_MAX_OVERFLOW", "-1"),
        ("REELSEARCH_DB_POOL_TIMEOUT", "0"),
        ("REELSEARCH_IMPORT_MAX_SHRINK", "1.5"),
        ("REELSEARCH_IMPORT_MAX_SHRINK", "-0.1"),
        ("REELSEARCH_IMPORT_MAX_SHRINK", "nan"),
    ],
)
def test_out_of_range_value_names_key(key: str, raw: str) -> None:
    """A value of the right type but outside its range fails naming the key."""
    with pytest.raises(ConfigError, match=key):
        Settings.from_env({key: raw})


@pytest.mark.parametrize(
    "key", ["REELSEARCH_SQLITE_CACHE_KIB", "REELSEARCH_SQLITE_IMPORT_CACHE_KIB"]
)
def test_negative_cache_size_is_refused_at_startup(key: str) -> None:
    """A negative page-cache size fails when settings are built, naming the key."""
    with pytest.raises(ConfigError, match=key):
        Settings.from_env({key: "-5"})


def test_negative_cache_size_does_not_surface_as_a_sqlite_error(small_db: Path) -> None:
    """A negative sqlite_cache_kib never reaches SQLite as 'PRAGMA cache_size=--5'."""
    environ = {
        "REELSEARCH_SQLITE_CACHE_KIB": "-5",
        "REELSEARCH_DATABASE_URL": f"sqlite:///{small_db}",
    }
    with pytest.raises(ConfigError, match="REELSEARCH_SQLITE_CACHE_KIB"):
        open_blocking_engine(Settings.from_env(environ)).close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./x.db", "./x.db"),
        ("sqlite:////var/lib/reelsearch/x.db", "/var/lib/reelsearch/x.db"),
        ("sqlite:///relative/dir/x.db", "relative/dir/x.db"),
        ("sqlite://", ":memory:"),
        ("sqlite+pysqlite:///x.db", "x.db"),
    ],
)
def test_sqlite_path(url: str, path: str) -> None:
    """sqlite_path is the file part of database_url."""
    assert path == Settings(database_url=url).sqlite_path


def test_postgresql_url_selects_the_postgresql_backend() -> None:
    """postgresql+asyncpg:// selects PostgreSQL; the same server is reached for blocking work."""
    settings = Settings.from_env(
        {"REELSEARCH_DATABASE_URL": "postgresql+asyncpg://app:pw@db.internal:5433/movies"}
    )
    assert (
        "postgresql",
        "postgresql://app:pw@db.internal:5433/movies",
        "postgresql+psycopg://app:pw@db.internal:5433/movies",
    ) == (settings.backend, settings.postgres_dsn, settings.sync_database_url)
    assert "sqlite" == Settings().backend


def test_pool_settings_from_the_environment() -> None:
    """Every pool knob is a REELSEARCH_DB_POOL_* variable, cast to its type."""
    settings = Settings.from_env(
        {
            "REELSEARCH_DB_POOL_SIZE": "3",
            "REELSEARCH_DB_MAX_OVERFLOW": "0",
            "REELSEARCH_DB_POOL_TIMEOUT": "0.5",
            "REELSEARCH_DB_POOL_RECYCLE": "-1",
            "REELSEARCH_DB_POOL_PRE_PING": "on",
            "REELSEARCH_DB_POOL_LIFO": "false",
        }
    )
    assert (3, 0, 0.5, -1.0, True, False) == (
        settings.db_pool_size,
        settings.db_max_overflow,
        settings.db_pool_timeout,
        settings.db_pool_recycle,
        settings.db_pool_pre_ping,
        settings.db_pool_lifo,
    )


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after startup."""
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("option", ["sslmode=disable", "ssl=disable"])
def test_tls_option_is_spelled_for_each_driver(option: str) -> None:
    """One URL serves asyncpg (ssl=) and libpq (sslmode=), whichever spelling it uses."""
    settings = Settings(database_url=f"postgresql+asyncpg://u@db:5432/movies?{option}&x=1")
    assert (
        "postgresql://u@db:5432/movies?sslmode=disable&x=1",
        "postgresql+asyncpg://u@db:5432/movies?ssl=disable&x=1",
        "postgresql+psycopg://u@db:5432/movies?sslmode=disable&x=1",
    ) == (settings.postgres_dsn, settings.asyncpg_url, settings.sync_database_url)


@pytest.mark.parametrize(
    ("key", "nearest"),
    [
        ("REELSEARCH_DB_POOL_SIZ", "REELSEARCH_DB_POOL_SIZE"),
        ("REELSEARCH_DATABASEURL", "REELSEARCH_DATABASE_URL"),
        ("REELSEARCH_IMPORT_MAX_SHRINKS", "REELSEARCH_IMPORT_MAX_SHRINK"),
    ],
)
def test_an_unknown_variable_is_refused_naming_the_nearest_setting(key: str, nearest: str) -> None:
    """A misspelled REELSEARCH_* variable fails at startup instead of being ignored."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({key: "1"})
    assert (
        f"Unknown setting {key!r}: no such REELSEARCH_* variable. Did you mean {nearest!r}?"
    ) == str(info.value)


def test_the_test_suites_variables_are_not_settings_and_not_refused() -> None:
    """REELSEARCH_TEST_* belong to the test suite: from_env leaves them alone."""
    environ = {"REELSEARCH_TEST_POSTGRES_URL": "x", "REELSEARCH_TEST_RESTART_POSTGRES": "1"}
    assert Settings() == Settings.from_env(environ)
