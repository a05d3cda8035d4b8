"""Static files: the committed build matches web/, and ServeStatic serves it with the
headers the issue asks for (immutable for hashed names, ETag/Last-Modified and 304,
precompressed br, zstd and gzip picked by Accept-Encoding). Over a real server.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import orjson
import pytest

from reelsearch.http import build_assets
from reelsearch.http.assets import STATIC_DIR, AssetManifest


@pytest.fixture(scope="module")
def manifest() -> dict[str, str]:
    return dict(orjson.loads((STATIC_DIR / "manifest.json").read_bytes()))


def test_committed_build_matches_the_sources() -> None:
    """python -m reelsearch.http.build_assets --check passes: static/ is built from web/."""
    assert build_assets.differences(build_assets.build()) == []
    assert build_assets.main(["--check"]) == 0


def test_check_names_what_is_out_of_date(tmp_path: Path) -> None:
    """A changed, missing or leftover file in static/ is reported by name."""
    outputs = build_assets.build()
    build_assets.write(outputs, tmp_path)
    assert build_assets.differences(outputs, tmp_path) == []
    name = AssetManifest.load(tmp_path).url("app.css").rsplit("/", 1)[1]
    (tmp_path / name).write_bytes(b"body{}")
    (tmp_path / (name + ".gz")).write_bytes(gzip.compress(b"body{}"))
    (tmp_path / "old.0123456789ab.js").write_bytes(b"")
    (tmp_path / "manifest.json").unlink()
    assert [
        f"differs: {name}",
        f"differs: {name}.gz",
        "missing: manifest.json",
        "stale: old.0123456789ab.js",
    ] == sorted(build_assets.differences(outputs, tmp_path))


def test_bundles_are_minified_and_hashed(manifest: dict[str, str]) -> None:
    """Each bundle is named by its content hash; scripts and styles are smaller than their
    sources."""
    for name, sources in build_assets.BUNDLES.items():
        built = (STATIC_DIR / manifest[name]).read_bytes()
        digest = build_assets.hashlib.sha256(built).hexdigest()[:12]
        assert manifest[name] == f"{name.rsplit('.', 1)[0]}.{digest}.{name.rsplit('.', 1)[1]}"
        original = sum(len((build_assets.WEB_DIR / s).read_bytes()) for s in sources)
        assert len(built) < original or name == "icon.svg"


def test_hashed_files_are_immutable_with_validators(web_url: str, manifest: dict[str, str]) -> None:
    """A hashed file: a year, public, immutable; ETag and Last-Modified; 304 on revalidation."""
    url = f"{web_url}/static/{manifest['app.js']}"
    first = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["content-type"].startswith("text/javascript")
    assert first.content == (STATIC_DIR / manifest["app.js"]).read_bytes()
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    since = httpx.get(url, headers={"If-Modified-Since": modified})
    assert since.status_code == 304


def test_unhashed_files_revalidate(web_url: str) -> None:
    """The manifest (no hash in its name) gets a short max-age, an ETag and 304s."""
    first = httpx.get(f"{web_url}/static/manifest.json")
    assert first.headers["cache-control"] == "max-age=60, public"
    again = httpx.get(
        f"{web_url}/static/manifest.json", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_unknown_asset_is_the_api_json_404(web_url: str, method: str) -> None:
    """A path under /static/ that names no file is answered as any unknown path is: a
    JSON 404 with the API's error shape (not ServeStatic's text/plain "Not Found"), with
    the security headers; a HEAD gets the same status and headers without a body."""
    response = httpx.request(method, f"{web_url}/static/nothing.js")
    elsewhere = httpx.request(method, f"{web_url}/v1/nothing")
    assert (response.status_code, response.headers["content-type"]) == (404, "application/json")
    expected = b'{"error":{"code":"not_found","message":"Not Found","param":null}}'
    assert response.content == (expected if method == "GET" else b"")
    assert response.content == elsewhere.content
    assert response.headers["content-length"] == str(len(expected))
    assert (response.headers["x-content-type-options"], response.headers["x-frame-options"]) == (
        "nosniff", "DENY"
    )  # fmt: skip


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize(
    ("name", "cache_control"),
    [("app.js", "public, max-age=31536000, immutable"), ("manifest.json", "max-age=60, public")],
)  # fmt: skip
def test_another_method_on_an_asset_is_the_api_json_405(
    web_url: str, manifest: dict[str, str], method: str, name: str, cache_control: str
) -> None:
    """A method other than GET and HEAD on a real file under /static/ is answered as on an
    API route (POST /v1/search): a JSON 405 with the API's error shape and Allow: GET, HEAD
    (not ServeStatic's empty body), with the security headers; GET and HEAD of the same
    file keep ServeStatic's headers (its ETag and Cache-Control)."""
    url = f"{web_url}/static/{manifest.get(name, name)}"
    response = httpx.request(method, url)
    api = httpx.post(f"{web_url}/v1/search")
    expected = (
        b'{"error":{"code":"method_not_allowed","message":"Method Not Allowed","param":null}}'
    )
    # Allow lists methods in no defined order (RFC 9110 10.2.1; Starlette's route joins a
    # set, so its order follows the process's string hashing): compared as sets.
    assert (405, "application/json", {"GET", "HEAD"}, expected) == (
        response.status_code, response.headers.get("content-type"),
        _methods(response.headers.get("allow")), response.content,
    )  # fmt: skip
    assert (405, {"GET", "HEAD"}, expected) == (
        api.status_code, _methods(api.headers["allow"]), api.content
    )  # fmt: skip
    assert str(len(expected)) == response.headers["content-length"]
    assert (response.headers["x-content-type-options"], response.headers["x-frame-options"]) == (
        "nosniff", "DENY"
    )  # fmt: skip
    got = httpx.get(url, headers={"Accept-Encoding": "identity"})
    head = httpx.head(url, headers={"Accept-Encoding": "identity"})
    assert (STATIC_DIR / manifest.get(name, name)).read_bytes() == got.content
    for served in (got, head):
        assert (200, cache_control, got.headers["etag"]) == (
            served.status_code, served.headers["cache-control"], served.headers["etag"]
        )  # fmt: skip


def _methods(allow: str | None) -> set[str]:
    """The methods an Allow header lists."""
    return {method.strip() for method in (allow or "").split(",") if method.strip()}


@pytest.mark.parametrize(
    ("accept", "encoding", "suffix"),
    [("br", "br", ".br"), ("zstd", "zstd", ".zstd"), ("gzip", "gzip", ".gz"),
     ("gzip, deflate, br, zstd", "br", ".br"), ("identity", None, "")],
)  # fmt: skip
def test_precompressed_variant_by_accept_encoding(
    web_url: str, manifest: dict[str, str], accept: str, encoding: str | None, suffix: str
) -> None:
    """The stored variant for the client's Accept-Encoding, with Vary: Accept-Encoding."""
    name = manifest["app.css"]
    with httpx.Client(headers={"Accept-Encoding": accept}) as client:
        response = client.send(client.build_request("GET", f"{web_url}/static/{name}"),
                               stream=True)  # fmt: skip
        raw = response.read() if encoding is None else b"".join(response.iter_raw())
    assert encoding == response.headers.get("content-encoding")
    assert "Accept-Encoding" in response.headers["vary"]
    assert raw == (STATIC_DIR / (name + suffix)).read_bytes()
