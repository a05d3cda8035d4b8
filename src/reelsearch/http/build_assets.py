"""Build the page's static files from ``web/`` into ``http/static/``, or check they match.

    python -m reelsearch.http.build_assets          # rebuild after editing web/
    python -m reelsearch.http.build_assets --check  # CI: the committed files are current

Pure Python, so no Node is needed anywhere: the JavaScript sources are
concatenated in a fixed order into one ES module (they share its private
scope; none imports another) and minified with rjsmin, the CSS with rcssmin.
Each bundle is named after the first 12 hex digits of its SHA-256 (the
pattern ServeStatic marks immutable), listed in ``manifest.json``, and
written beside its .gz, .br and .zstd variants, which ServeStatic picks by
the request's Accept-Encoding.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import brotli
import orjson
import rcssmin
import rjsmin
import zstandard

from reelsearch.http.assets import MANIFEST_NAME, STATIC_DIR

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
# Bundle name -> its sources in web/, in the order they are joined.
BUNDLES: dict[str, tuple[str, ...]] = {
    "app.js": ("js/highlight.js", "js/suggest.js", "js/results.js", "js/main.js"),
    "app.css": ("css/page.css",),
    "icon.svg": ("img/icon.svg",),
}
ENCODINGS = (".gz", ".br", ".zstd")
HASH_DIGITS = 12  # ServeStatic's immutable test: name.<12 hex>.ext


def _minify(name: str, text: str) -> str:
    if name.endswith(".js"):
        return str(rjsmin.jsmin(text))
    if name.endswith(".css"):
        return str(rcssmin.cssmin(text))
    return text.strip() + "\n"


def _compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if suffix == ".br":
        return bytes(brotli.compress(data, quality=11))
    return zstandard.ZstdCompressor(level=19).compress(data)


def decompress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.decompress(data)
    if suffix == ".br":
        return bytes(brotli.decompress(data))
    return zstandard.ZstdDecompressor().decompress(data)


def build(web_dir: Path = WEB_DIR) -> dict[str, bytes]:
    """Every output file (bundles, their variants, the manifest) by name."""
    outputs: dict[str, bytes] = {}
    manifest: dict[str, str] = {}
    for name, sources in BUNDLES.items():
        text = "\n".join((web_dir / source).read_text(encoding="utf-8") for source in sources)
        body = _minify(name, text).encode("utf-8")
        stem, _, ext = name.rpartition(".")
        built = f"{stem}.{hashlib.sha256(body).hexdigest()[:HASH_DIGITS]}.{ext}"
        manifest[name] = built
        outputs[built] = body
        for suffix in ENCODINGS:
            outputs[built + suffix] = _compress(body, suffix)
    outputs[MANIFEST_NAME] = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    return outputs


def differences(outputs: dict[str, bytes], static_dir: Path = STATIC_DIR) -> list[str]:
    """What in ``static_dir`` differs from a fresh build (empty: up to date).

    Compressed variants are compared by what they decompress to: another
    version of a compressor may pick other bytes for the same content.
    """
    found: list[str] = []
    present = {path.name for path in static_dir.iterdir()} if static_dir.is_dir() else set()
    for name, data in outputs.items():
        path = static_dir / name
        if name not in present:
            found.append(f"missing: {name}")
            continue
        suffix = next((s for s in ENCODINGS if name.endswith(s)), None)
        stored = path.read_bytes()
        original = outputs[name[: -len(suffix)]] if suffix else data
        if (decompress(stored, suffix) if suffix else stored) != original:
            found.append(f"differs: {name}")
    found += [f"stale: {name}" for name in sorted(present - outputs.keys())]
    return found


def write(outputs: dict[str, bytes], static_dir: Path = STATIC_DIR) -> None:
    static_dir.mkdir(parents=True, exist_ok=True)
    for path in static_dir.iterdir():
        if path.name not in outputs:
            path.unlink()
    for name, data in outputs.items():
        (static_dir / name).write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if static/ is out of date")
    args = parser.parse_args(argv)
    outputs = build()
    if args.check:
        problems = differences(outputs)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python -m reelsearch.http.build_assets", file=sys.stderr)
        return 1 if problems else 0
    write(outputs)
    for name in sorted(outputs):
        print(f"{len(outputs[name]):>8}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
