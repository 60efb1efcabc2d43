"""The dashboard is served by the app: the page at / and at deep links, its assets, no CDN."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ridgerider.dashboard import ASSETS_PREFIX, STATIC_DIR, mount_dashboard


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.get("/api/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    mount_dashboard(app)
    return TestClient(app)


def test_page_at_root_and_deep_links(client: TestClient) -> None:
    root = client.get("/")
    assert root.status_code == 200
    assert root.headers["content-type"].startswith("text/html")
    assert '<svg id="tree"' in root.text
    deep = client.get("/jobs/42")
    assert deep.status_code == 200
    assert deep.text == root.text
    assert client.get("/jobs/not-a-number").status_code == 404
    assert client.get("/crossplay/7").text == root.text
    assert client.get("/crossplay/x").status_code == 404
    assert client.get("/compare?jobs=3,5").text == root.text
    assert client.get("/api/v1/ping").json() == {"pong": "yes"}


def test_every_referenced_asset_is_served(client: TestClient) -> None:
    page = client.get("/").text
    refs = re.findall(r'(?:src|href)="(/ui/[^"]+)"', page)
    assert {"/ui/app.js", "/ui/style.css"} <= set(refs)
    # ES module imports between the scripts must resolve too.
    for script in STATIC_DIR.glob("*.js"):
        for name in re.findall(r'from "\./([^"]+)"', script.read_text()):
            refs.append(f"{ASSETS_PREFIX}/{name}")
    for ref in refs:
        r = client.get(ref)
        assert r.status_code == 200, ref
        assert r.content


def test_no_network_at_runtime() -> None:
    """Nothing the page loads comes from another host (no CDN, no fonts from the web)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text), path.name
        assert not re.search(r"""(?:import|fetch)\s*\(?\s*["'`]https?://""", text), path.name
        assert "@import url(http" not in text, path.name


def test_mount_keeps_the_schema_clean(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/jobs/") for p in paths)
