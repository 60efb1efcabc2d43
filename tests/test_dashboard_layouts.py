"""The tree's layouts in headless Chromium: every layout fills the canvas and stays readable.

Three window sizes (desktop, laptop, phone) and two tree shapes: a lever-game search (the root
has many children: wide and shallow) and a synthetic deep tree (depth 9), then a synthetic
10,000-node job. After loading and after zooming then *Fit*, the drawn nodes' on-screen
bounding box must fill the svg in its limiting dimension and stay inside it, node circles keep
a readable radius and the edge labels shown are at least 9 px and never overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.needs import MARKS, require

pytestmark = MARKS
require()


from dashboard.browser import (  # noqa: E402
    Server,
    api,
    browser,
    checked_page,
    db_url,
    dev_server,
    drawn,
    open_job,
    render_benchmark,
    ride,
    shot,
)

__all__ = ["api", "browser", "db_url", "dev_server"]  # fixtures

SIZES = {"desktop": (1440, 900), "laptop": (1024, 768), "phone": (414, 896)}
LAYOUTS = ("tidy", "radial", "lr")

GEOMETRY = """() => {
  const svg = document.querySelector("#tree");
  const s = svg.getBoundingClientRect();
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, r = Infinity, n = 0;
  for (const c of svg.querySelectorAll(".node")) {
    const b = c.getBoundingClientRect();
    x0 = Math.min(x0, b.left); y0 = Math.min(y0, b.top);
    x1 = Math.max(x1, b.right); y1 = Math.max(y1, b.bottom);
    r = Math.min(r, b.width / 2, b.height / 2);
    n += 1;
  }
  // Hidden labels carry the class "off" (display: none); check the others really show.
  const shown = [...svg.querySelectorAll(".elabel:not(.off)")].filter(
    (t) => getComputedStyle(t).display !== "none");
  const boxes = shown.map((t) => t.getBoundingClientRect()).sort((a, b) => a.left - b.left);
  const fonts = shown.map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
  let overlaps = 0;  // sweep along x: pairs of boxes that overlap by more than half a pixel
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    for (let j = i + 1; j < boxes.length && boxes[j].left < a.right - 0.5; j++) {
      const b = boxes[j];
      if (Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5) overlaps += 1;
    }
  }
  return { svg: [s.left, s.top, s.right, s.bottom], box: [x0, y0, x1, y1], r, n,
           labels: shown.length, minFont: Math.min(...fonts), maxFont: Math.max(0, ...fonts),
           overlaps, layout: svg.dataset.layout, view: window.ridgerider.state.view.tree.view };
}"""
PAINTED = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
SIZED = """() => document.querySelector("#tree").dataset.k ===
  String(window.ridgerider.state.view.tree.view.k)"""
"""Node radii, label sizes and which labels show follow a zoom shortly after (svg[data-k])."""


def geometry(page: Any) -> dict[str, Any]:
    page.wait_for_function(SIZED)
    page.evaluate(PAINTED)
    return page.evaluate(GEOMETRY)


def check_fitted(g: dict[str, Any], what: str) -> None:
    """Fills the svg in its limiting dimension, inside it; readable nodes and labels."""
    sx0, sy0, sx1, sy1 = g["svg"]
    x0, y0, x1, y1 = g["box"]
    assert sx0 - 0.5 <= x0 and x1 <= sx1 + 0.5 and sy0 - 0.5 <= y0 and y1 <= sy1 + 0.5, (what, g)
    cover = max((x1 - x0) / (sx1 - sx0), (y1 - y0) / (sy1 - sy0))
    assert cover >= 0.8, (what, cover, g)
    check_readable(g, what)


def check_readable(g: dict[str, Any], what: str) -> None:
    assert g["r"] >= 3, (what, g)
    assert g["overlaps"] == 0, (what, g)
    if g["labels"]:
        assert g["minFont"] >= 9 and g["maxFont"] <= 14, (what, g)


@pytest.fixture(scope="module")
def jobs(api: httpx.Client, db_url: str) -> dict[str, dict[str, Any]]:
    """A wide lever-game tree, a deep synthetic one and a 10,000-node synthetic one."""
    r = api.post("/jobs", json={"problem": "lever-game", "settings": {"max_nodes": 150}, "seed": 1})
    assert r.status_code == 201, r.text
    ride(db_url, r.json()["id"])
    bench = render_benchmark()
    ids = {
        "wide": r.json()["id"],
        "deep": bench.build_job(db_url, 200, seed=1, max_depth=9, deep=True),
        "big": bench.build_job(db_url, 10_000, seed=0),
    }
    out = {"big": {"id": ids["big"], "nodes": 10_000}}
    for name in ("wide", "deep"):
        nodes = api.get(f"/jobs/{ids[name]}/tree").json()["nodes"]
        depth = max(n["depth"] for n in nodes)
        root = sum(n["depth"] == 1 for n in nodes)
        out[name] = {"id": ids[name], "nodes": len(nodes), "depth": depth, "root_children": root}
    wide, deep = out["wide"], out["deep"]
    # The shapes the layouts are tested on: a root with many children, two or three levels
    # (150 nodes), against 9 levels.
    assert wide["nodes"] == 150 and wide["depth"] <= 3 and wide["root_children"] >= 10, wide
    assert deep["depth"] == 9, deep
    return out


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    """One page for the whole module (the viewport changes per test)."""
    with checked_page(browser, 1440, 900) as pg:
        yield pg


def zoom_and_fit(page: Any, at: float = 0.3, wheels: tuple[int, ...] = (-500,)) -> dict[str, Any]:
    """Zoom in (pointer at ``at`` of the width), check, pan, then *Fit*: the geometry after."""
    box = page.locator("#tree").bounding_box()
    x, y = box["x"] + box["width"] * at, box["y"] + box["height"] * 0.4
    page.mouse.move(x, y)
    for dy in wheels:
        page.mouse.wheel(0, dy)
    zoomed = geometry(page)
    assert zoomed["view"]["k"] > 1.5
    check_readable(zoomed, "zoomed")
    page.mouse.down()
    page.mouse.move(x + 50, y + 30, steps=3)
    page.mouse.up()
    page.click("#fit")
    fitted = geometry(page)
    fitted["zoomed"] = zoomed
    return fitted


@pytest.mark.parametrize("size", SIZES)
def test_wide_and_deep_trees_fill_the_canvas(
    page: Any, dev_server: Server, jobs: dict, size: str, tmp_path: Path
) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    for shape in ("wide", "deep"):
        job = jobs[shape]
        open_job(page, dev_server.url, job["id"])
        g = geometry(page)
        assert g["n"] == job["nodes"]
        check_fitted(g, f"{shape} at {size}")
        if shape == "wide" and size == "phone":
            shot(page, tmp_path, "dashboard-wide-phone", ".tree-card")
        check_fitted(zoom_and_fit(page), f"{shape} at {size}, zoomed then fitted")
        if size != "phone":
            continue
        # The phone turns: the untouched (fitted) view follows the new canvas.
        page.set_viewport_size({"width": height, "height": width})
        page.wait_for_function(
            "w => document.querySelector('#tree').clientWidth !== w", arg=g["svg"][2] - g["svg"][0]
        )
        page.evaluate(PAINTED)
        check_fitted(geometry(page), f"{shape} at {size}, rotated")
        page.set_viewport_size({"width": width, "height": height})


def test_every_layout_draws_every_node(
    page: Any, dev_server: Server, api: httpx.Client, jobs: dict, tmp_path: Path
) -> None:
    page.set_viewport_size(dict(zip(("width", "height"), SIZES["desktop"], strict=True)))
    # On a desktop canvas "auto" draws the wide tree radially and the deep one top-down.
    for shape, auto in (("wide", "radial"), ("deep", "tidy")):
        job = jobs[shape]
        open_job(page, dev_server.url, job["id"])
        assert page.get_attribute("#tree", "data-layout") == auto
        name = page.eval_on_selector(f"#layout option[value={auto}]", "o => o.textContent")
        assert page.locator("#layout option").first.inner_text() == f"auto ({name})"
        nodes = api.get(f"/jobs/{job['id']}/tree").json()["nodes"]
        want = sorted((n["id"], n["key"]) for n in nodes)
        for layout in LAYOUTS:
            page.select_option("#layout", layout)
            g = geometry(page)
            assert g["layout"] == layout
            assert sorted(drawn(page)) == want
            check_fitted(g, f"{shape} {layout}")
            if (shape, layout) in {("deep", "tidy"), ("wide", "radial"), ("deep", "lr")}:
                shot(page, tmp_path, f"dashboard-{layout}", ".tree-card")
        page.select_option("#layout", "auto")


CENTRES = """() => [...document.querySelectorAll("#tree .node")].map((c) => {
  const b = c.getBoundingClientRect();
  return [Number(c.dataset.nodeId), (b.left + b.right) / 2, (b.top + b.bottom) / 2];
})"""


def test_shift_wheel_stretches_the_breadth_only(page: Any, dev_server: Server, jobs: dict) -> None:
    """Top-down: Shift+wheel spreads siblings apart about the pointer, levels stay; Fit undoes."""
    page.set_viewport_size(dict(zip(("width", "height"), SIZES["laptop"], strict=True)))
    open_job(page, dev_server.url, jobs["deep"]["id"])
    page.select_option("#layout", "tidy")
    geometry(page)
    before = {i: (x, y) for i, x, y in page.evaluate(CENTRES)}
    box = page.locator("#tree").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    a = min(before, key=lambda i: (before[i][0] - cx) ** 2 + (before[i][1] - cy) ** 2)
    row = [i for i in before if abs(before[i][1] - before[a][1]) < 1 and i != a]
    b = max(row, key=lambda i: abs(before[i][0] - before[a][0]))
    page.mouse.move(*before[a])
    k = page.evaluate("window.ridgerider.state.view.tree.view.k")
    page.keyboard.down("Shift")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Shift")
    page.evaluate(PAINTED)
    after = {i: (x, y) for i, x, y in page.evaluate(CENTRES)}
    assert page.evaluate("window.ridgerider.state.view.tree.view.k") == k
    assert after[a] == pytest.approx(before[a], abs=1)  # the node under the pointer stays
    stretch = (after[b][0] - after[a][0]) / (before[b][0] - before[a][0])
    assert stretch == pytest.approx(1.57, rel=0.02)  # exp(300 · 0.0015)
    assert all(after[i][1] == pytest.approx(before[i][1], abs=1) for i in before)
    check_readable(geometry(page), "stretched")
    page.click("#fit")
    refit = {i: (x, y) for i, x, y in page.evaluate(CENTRES)}
    assert all(refit[i] == pytest.approx(before[i], abs=1) for i in before)


def test_ten_thousand_nodes_are_drawn_whole(page: Any, dev_server: Server, jobs: dict) -> None:
    page.set_viewport_size(dict(zip(("width", "height"), SIZES["desktop"], strict=True)))
    open_job(page, dev_server.url, jobs["big"]["id"])
    g = geometry(page)
    assert g["n"] == 10_000 and page.locator("#tree .node.collapsed").count() == 0
    check_fitted(g, "10k")
    # Deep in, labels show where there is room for them; Fit brings the whole tree back.
    g = zoom_and_fit(page, at=0.5, wheels=(-800,) * 4)
    assert g["zoomed"]["labels"] > 0
    check_fitted(g, "10k zoomed then fitted")
