"""The ``reelsearch`` command run as a user runs it: a subprocess, its exit code and its output."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import fcntl
import os
import pty
import re
import sqlite3
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from child_processes import environ_without_settings
from reelsearch import __version__

# Long enough for a cold interpreter to import the app and write a small catalog.
TIMEOUT = 120


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``reelsearch ARGS`` with no REELSEARCH_* variable but those in ``env``."""
    environ = environ_without_settings()
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reelsearch", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=TIMEOUT,
    )


def movielens(path: Path, count: int) -> Path:
    """A MovieLens movies.csv of ``count`` movies."""
    rows = "".join(f"{n},Film {n} ({1950 + n % 70}),Drama\n" for n in range(1, count + 1))
    path.write_text("movieId,title,genres\n" + rows, encoding="utf-8")
    return path


def movies_in(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM movies").fetchone()[0])
    finally:
        conn.close()


def test_version() -> None:
    """``reelsearch --version`` prints the package version and exits 0."""
    result = run("--version")
    assert (0, f"reelsearch {__version__}\n") == (result.returncode, result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["generate", "out", "--titles", "-5"],
            "argument --titles: -5 is out of range: must be at least 0",
        ),  # noqa: E501
        (
            ["generate", "out", "--titles", "many"],
            "argument --titles: 'many' is not a whole number",
        ),  # noqa: E501
        (
            ["search", "matrix", "--limit", "0"],
            "argument --limit: 0 is out of range: must be between 1 and 100",
        ),  # noqa: E501
        (
            ["serve", "--port", "70000"],
            "argument --port: 70000 is out of range: must be between 1 and 65535",
        ),  # noqa: E501
        (["serve", "--workers", "0"], "argument --workers: 0 is out of range: must be at least 1"),  # noqa: E501
        (["import", "imdb", "missing.tsv.gz"], "argument files: 'missing.tsv.gz' is not a file"),  # noqa: E501
        (
            ["import", "movielens", "movies.csv", "--kinds", "movie"],
            "unrecognized arguments: --kinds movie",
        ),  # noqa: E501
        (["import"], "the following arguments are required: SOURCE"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_are_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    """A bad argument exits 2 with argparse's usage line and the reason, never a traceback."""
    movielens(tmp_path / "movies.csv", 1)
    result = run(*args, cwd=tmp_path)
    assert 2 == result.returncode
    assert result.stderr.startswith("usage: reelsearch"), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_empty_kinds_list_is_a_usage_error(tmp_path: Path) -> None:
    """``--kinds ,`` names no kind: a usage error before any file is read."""
    basics = tmp_path / "title.basics.tsv.gz"
    basics.write_bytes(b"")
    result = run("import", "imdb", str(basics), "--kinds", ",")
    assert 2 == result.returncode
    assert "argument --kinds: give at least one titleType" in result.stderr


def test_a_misspelled_variable_is_a_startup_error_naming_the_nearest(tmp_path: Path) -> None:
    """REELSEARCH_CATALOG_POLL_SECOND (no S) stops every command, suggesting the real name."""
    result = run("search", "matrix", env={"REELSEARCH_CATALOG_POLL_SECOND": "1"}, cwd=tmp_path)
    assert (1, "") == (result.returncode, result.stdout)
    assert (
        "reelsearch: Unknown setting 'REELSEARCH_CATALOG_POLL_SECOND': no such REELSEARCH_* "
        "variable. Did you mean 'REELSEARCH_CATALOG_POLL_SECONDS'?\n"
    ) == result.stderr


def test_a_variable_far_from_any_setting_gets_no_suggestion(tmp_path: Path) -> None:
    """A name close to none is still refused, without a guess."""
    result = run("generate", "out", "--titles", "1", env={"REELSEARCH_XYZZY": "1"}, cwd=tmp_path)
    assert 1 == result.returncode
    assert "Unknown setting 'REELSEARCH_XYZZY': no such REELSEARCH_* variable.\n" == (
        result.stderr.removeprefix("reelsearch: ")
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    """--database-url and --quiet work on either side of ``import movielens FILE``."""
    db = tmp_path / "c.db"
    options = ["--database-url", f"sqlite:///{db}", "--quiet"]
    command = ["import", "movielens", str(movielens(tmp_path / "movies.csv", 5))]
    args = options + command if where == "before" else command + options

    result = run(*args, cwd=tmp_path)

    assert (0, "") == (result.returncode, result.stderr)
    assert result.stdout.startswith("imported movielens: 5 movies (5 rows read, 0 bad)")
    assert 5 == movies_in(db)
    assert not (tmp_path / "reelsearch.db").exists()  # not the default catalog


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped stderr gets plain lines: the file read to 100% with a rate, then each step."""
    db = tmp_path / "c.db"
    env = {"REELSEARCH_DATABASE_URL": f"sqlite:///{db}"}
    result = run("import", "movielens", str(movielens(tmp_path / "movies.csv", 50)), env=env)

    assert 0 == result.returncode, result.stderr
    lines = result.stderr.splitlines()
    assert re.fullmatch(
        r"reelsearch: reading movies\.csv: 100% [\d.]+k?/[\d.]+k? \[\d\d:\d\d<\d\d:\d\d, "
        r"[\d.]+[kMG]?B/s\]",
        lines[0],
    ), lines[0]
    steps = [line.split(" done in ")[0] for line in lines[1:]]
    assert ["reelsearch: movies", "reelsearch: delete stale", "reelsearch: rank"] == steps[:3]
    assert "\r" not in result.stderr


def test_quiet_prints_no_progress(tmp_path: Path) -> None:
    """--quiet: nothing on stderr; the summary still goes to stdout."""
    db = tmp_path / "c.db"
    env = {"REELSEARCH_DATABASE_URL": f"sqlite:///{db}"}
    result = run("import", "movielens", "-q", str(movielens(tmp_path / "m.csv", 5)), env=env)
    assert (0, "") == (result.returncode, result.stderr)
    assert "imported movielens: 5 movies" in result.stdout


def test_a_progress_bar_with_rate_and_eta_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, ``generate`` draws a tqdm bar, redrawn in place."""
    environ = environ_without_settings()
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelsearch", "generate", str(tmp_path / "g"), "--titles",
             "30000", "--no-akas"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=environ,
        )  # fmt: skip
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        assert 0 == process.wait(TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()
    finally:
        os.close(controller)
    text = shown.decode()
    assert "\r" in text  # redrawn in place
    final = text.replace("\r\n", "\n").split("\r")[-1]
    assert re.search(
        r"generating: 100%\|█+\| 30\.0k/30\.0k \[\d\d:\d\d<\d\d:\d\d, +[\d.]+k?titles/s\]",
        final,
    ), final


def test_refused_imports_exit_1_and_allow_shrink_lets_them_through(tmp_path: Path) -> None:
    """An empty or a shrinking import exits 1 saying the catalog is unchanged; --allow-shrink
    accepts the shrinking one (not the empty one)."""
    db = tmp_path / "c.db"
    env = {"REELSEARCH_DATABASE_URL": f"sqlite:///{db}"}
    assert (
        0 == run("import", "movielens", str(movielens(tmp_path / "a.csv", 10)), env=env).returncode
    )

    shrink = run("-q", "import", "movielens", str(movielens(tmp_path / "b.csv", 4)), env=env)
    empty = run("-q", "import", "movielens", str(movielens(tmp_path / "c.csv", 0)), env=env)
    assert (1, 1, 10) == (shrink.returncode, empty.returncode, movies_in(db))
    assert shrink.stderr.startswith(
        "reelsearch: import refused; the catalog is unchanged and still served.\n"
        "  the import would shrink the catalog from 10 to 4 movies (-60%;"
    ), shrink.stderr
    assert "no movies to import from movielens: 0 rows read" in empty.stderr

    allowed = run("-q", "import", "movielens", str(tmp_path / "b.csv"), "--allow-shrink", env=env)
    refused = run("-q", "import", "movielens", str(tmp_path / "c.csv"), "--allow-shrink", env=env)
    assert (0, 1, 4) == (allowed.returncode, refused.returncode, movies_in(db))


def test_the_shrink_share_comes_from_the_environment(tmp_path: Path) -> None:
    """REELSEARCH_IMPORT_MAX_SHRINK=0.7 lets 10 -> 4 movies (-60%) through."""
    db = tmp_path / "c.db"
    env = {"REELSEARCH_DATABASE_URL": f"sqlite:///{db}", "REELSEARCH_IMPORT_MAX_SHRINK": "0.7"}
    assert 0 == run("-q", "import", "movielens", str(movielens(tmp_path / "a.csv", 10)),
                    env=env).returncode  # fmt: skip
    result = run("-q", "import", "movielens", str(movielens(tmp_path / "b.csv", 4)), env=env)
    assert (0, 4) == (result.returncode, movies_in(db))
