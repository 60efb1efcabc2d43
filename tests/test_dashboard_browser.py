"""The dashboard in headless Chromium (Debian's ``chromium``), driven by Playwright.

The real app (``create_app``) runs under uvicorn on a SQLite archive; jobs are submitted over
HTTP and ridden by a worker in this process, so a test controls how fast a job grows. Every
check compares what the page draws with what the API answers. Screenshots go to the test's
temporary folder (``docs/img`` holds copies).
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dashboard.needs import MARKS, require

pytestmark = MARKS
require()


from dashboard.browser import (  # noqa: E402
    Server,
    api,
    browser,
    db_url,
    descendants,
    dev_server,
    drawn,
    finished_job,
    open_job,
    page,
    render_benchmark,
    ride,
    shot,
    submit,
)
from ridgerider.api import create_app  # noqa: E402
from ridgerider.config import Settings  # noqa: E402
from ridgerider.services import accounts  # noqa: E402
from ridgerider.services.storage.sql import SQLStorage  # noqa: E402

__all__ = ["api", "browser", "db_url", "dev_server", "finished_job", "page"]  # fixtures


def test_jobs_list(page: Any, dev_server: Server, api: httpx.Client, finished_job: dict) -> None:
    page.goto(dev_server.url + "/")
    row = page.locator(f'tr[data-job-id="{finished_job["id"]}"]')
    row.wait_for()
    solutions = api.get(f"/jobs/{finished_job['id']}/solutions").json()
    assert solutions, "the test job should have solutions"
    page.wait_for_function(
        "n => document.querySelector(`tr[data-job-id='${n}'] [data-field=solutions]`)"
        ".textContent !== '–'",
        arg=finished_job["id"],
    )
    assert row.locator("td").nth(1).inner_text() == "tree-rl"
    assert row.locator(".status").inner_text() == "succeeded"
    assert row.locator("[data-field=nodes]").inner_text() == str(finished_job["nodes"])
    assert row.locator("[data-field=solutions]").inner_text() == str(len(solutions))
    assert "100%" in row.inner_text()
    # Filter by status: a succeeded job leaves the list of running ones, and comes back.
    page.select_option("#filter-status", "running")
    assert row.count() == 0
    page.select_option("#filter-status", "")
    assert row.count() == 1
    assert "development mode" in page.inner_text("#mode")
    # The job's link opens its page in place (an address of its own), and back returns.
    row.locator("a").click()
    page.wait_for_selector("body[data-tree-ready]")
    assert page.url == f"{dev_server.url}/jobs/{finished_job['id']}"
    assert len(drawn(page)) == finished_job["nodes"]
    page.go_back()
    page.wait_for_selector("#jobs-view:not([hidden])")
    assert page.locator("#job-view").is_hidden()


def test_tree_matches_the_api(
    page: Any, dev_server: Server, api: httpx.Client, finished_job: dict, tmp_path: Path
) -> None:
    open_job(page, dev_server.url, finished_job["id"])
    nodes = api.get(f"/jobs/{finished_job['id']}/tree").json()["nodes"]
    got = drawn(page)
    assert len(got) == len(nodes) == finished_job["nodes"]
    assert sorted(got) == sorted((n["id"], n["key"]) for n in nodes)
    # Solutions are marked, and the edge labels name each node's ridge (index and sign).
    solution_ids = {n["id"] for n in nodes if n["is_solution"]}
    marked = page.eval_on_selector_all(
        "#tree .node.solution", "els => els.map(e => Number(e.dataset.nodeId))"
    )
    assert set(marked) == solution_ids
    labels = page.eval_on_selector_all("#tree .elabel", "els => els.map(e => e.textContent)")
    expected = [n["key"].split(".")[-1].replace("-", "−") for n in nodes if n["parent_id"]]
    assert sorted(labels) == sorted(expected)
    # Collapse the first child of the root: its subtree disappears behind one node.
    root = next(n for n in nodes if n["parent_id"] is None)
    parent = next(n for n in nodes if n["parent_id"] == root["id"] and n["n_children"])
    hidden = descendants(nodes, parent["id"])
    page.dblclick(f'#tree [data-node-id="{parent["id"]}"]')
    assert len(drawn(page)) == len(nodes) - len(hidden)
    page.click("#expand-all")
    assert len(drawn(page)) == len(nodes)
    # Wheel zooms about the pointer, dragging pans; neither selects a node.
    view = "() => window.ridgerider.state.view.tree.view"
    before = page.evaluate(view)
    box = page.locator("#tree").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    zoomed = page.evaluate(view)
    assert zoomed["k"] > before["k"]
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 60, steps=5)
    page.mouse.up()
    panned = page.evaluate(view)
    assert (panned["x"] - zoomed["x"], panned["y"] - zoomed["y"]) == pytest.approx((120, 60))
    assert page.get_attribute("#tree .viewport", "transform") == (
        f"translate({panned['x']},{panned['y']}) scale({panned['k']})"
    )
    # The MIS spectrum: one bar per eigenvalue; the ridges ridden from the root are marked.
    spectrum = finished_job["mis"]["spectrum"]
    assert page.locator("#spectrum rect.bar").count() == len(spectrum) > 0
    ridden = page.eval_on_selector_all(
        "#spectrum rect.bar.ridge", "els => els.map(e => e.textContent.match(/λ(\\d+)/)[1])"
    )
    roots_children = {n["fingerprint"][0][0] for n in nodes if n["parent_id"] == root["id"]}
    assert {int(i) for i in ridden} == roots_children
    assert all(spectrum[i] < 0 for i in roots_children)
    shot(page, tmp_path, "dashboard-tree")


def test_inspector(
    page: Any, dev_server: Server, api: httpx.Client, finished_job: dict, tmp_path: Path
) -> None:
    job_id = finished_job["id"]
    open_job(page, dev_server.url, job_id)
    solution = api.get(f"/jobs/{job_id}/solutions").json()[0]
    node = api.get(f"/jobs/{job_id}/nodes/{solution['node_id']}").json()
    page.click(f'#tree [data-node-id="{node["id"]}"]')
    page.wait_for_selector(f'#inspector[data-node-id="{node["id"]}"]')
    box = page.locator("#inspector")
    assert box.locator("[data-field=fingerprint]").inner_text() == node["key"]
    assert float(box.locator("[data-field=loss]").inner_text()) == pytest.approx(
        node["loss"], rel=1e-3
    )
    assert float(box.locator("[data-field=loss_start]").inner_text()) == pytest.approx(
        node["loss_start"], rel=1e-3
    )
    assert float(box.locator("[data-field=eigenvalue]").inner_text()) == pytest.approx(
        node["eigenvalue"], rel=1e-3
    )
    assert box.locator("[data-field=steps]").inner_text() == str(node["steps"])
    assert box.locator("[data-field=end_reason]").inner_text() == node["end_reason"]
    assert (
        box.locator("[data-field=leaf]")
        .inner_text()
        .startswith(f"Leaf reached: {node['metrics']['leaf']}")
    )
    assert "solution" in box.locator("h3").inner_text()
    # The loss chart covers the rides from the root to this node.
    page.wait_for_function("document.querySelector('#loss-chart path.line')")
    depth = node["depth"]
    note = page.inner_text("#loss-note")
    assert note.startswith(f"{depth + 1} rides from the MIS"), note
    assert "without per-step losses" not in note
    chain, parent = [], node["id"]
    by_id = {n["id"]: n for n in api.get(f"/jobs/{job_id}/tree").json()["nodes"]}
    while parent is not None:
        chain.append(parent)
        parent = by_id[parent]["parent_id"]
    steps = sum(len(api.get(f"/jobs/{job_id}/nodes/{i}/trace").json()["losses"]) for i in chain)
    path = page.get_attribute("#loss-chart path.line", "d")
    assert path.count("M") + path.count("L") == steps
    # The parameters download (fetched with the page's credentials) is θ of that node.
    with page.expect_download() as info:
        page.click("#params-link")
    theta = np.load(io.BytesIO(Path(info.value.path()).read_bytes()))
    served = api.get(f"/jobs/{job_id}/nodes/{node['id']}/params").content
    np.testing.assert_array_equal(theta, np.load(io.BytesIO(served)))
    shot(page, tmp_path, "dashboard-inspector", "#inspector")
    shot(page, tmp_path, "dashboard-job")


def test_inspector_shows_both_lever_game_policies(
    page: Any, dev_server: Server, api: httpx.Client, db_url: str
) -> None:
    r = api.post(
        "/jobs", json={"problem": "lever-game", "settings": {"max_nodes": 4, "order": "dfs"}}
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    ride(db_url, job_id)
    solution = api.get(f"/jobs/{job_id}/solutions").json()[0]
    open_job(page, dev_server.url, job_id)
    page.click(f'#tree [data-node-id="{solution["node_id"]}"]')
    page.wait_for_selector(f'#inspector[data-node-id="{solution["node_id"]}"]')
    for player in ("policy_1", "policy_2"):
        policy = solution["metrics"][player]
        bars = page.eval_on_selector_all(
            f'#inspector svg[data-metric="{player}"] rect.bar',
            "els => els.map(e => [e.textContent, Number(e.getAttribute('height'))])",
        )
        assert len(bars) == len(policy) == 10
        top = max(range(10), key=lambda i: policy[i])
        for (title, height), p in zip(bars, policy, strict=True):
            assert title.startswith(f"{player}[")
            assert float(title.split("= ")[1]) == pytest.approx(p, rel=1e-3)
            # Probabilities are drawn on a 0..1 axis: heights follow them (a finished leaf's
            # policy is nearly one-hot; a bar is never drawn thinner than half a pixel).
            assert height / bars[top][1] == pytest.approx(p / policy[top], abs=0.01)


# The metrics of a digits-mlp node (root of `ridgerider run digits-mlp --method approx`), the last
# class set to None (what the problem reports for a class without test examples): a digits
# search takes minutes here, so the inspector gets this record directly.
DIGITS_METRICS = {
    "train_accuracy": 0.17593880389429764,
    "test_accuracy": 0.17827298050139276,
    "per_class_accuracy": [
        0.0,
        0.1388888888888889,
        0.0,
        0.918918918918919,
        0.6666666666666666,
        0.027777777777777776,
        0.0,
        0.0,
        0.0,
        None,
    ],
    "train_loss": 2.3829906120593423,
}


def test_inspector_shows_per_class_accuracy(
    page: Any, dev_server: Server, finished_job: dict
) -> None:
    open_job(page, dev_server.url, finished_job["id"])
    node = {"id": 7, "parent_id": 1, "key": "0+", "status": "done", "metrics": DIGITS_METRICS}
    page.evaluate(
        """async node => {
            const { renderInspector } = await import("/ui/inspector.js");
            renderInspector(document.querySelector("#inspector"), node, { id: 1 });
        }""",
        node,
    )
    bars = page.eval_on_selector_all(
        '#inspector svg[data-metric="per_class_accuracy"] rect.bar',
        "els => els.map(e => [e.textContent, Number(e.getAttribute('height'))])",
    )
    acc = DIGITS_METRICS["per_class_accuracy"]
    assert len(bars) == len(acc) == 10
    assert "Per-class test accuracy" in page.inner_text("#inspector")
    tallest = max(range(10), key=lambda i: acc[i] or 0)
    for (title, height), a in zip(bars, acc, strict=True):
        assert title.startswith("per_class_accuracy[")
        # On the 0..1 axis heights follow accuracy; a class with no test example shows 0.
        assert height / bars[tallest][1] == pytest.approx(max(a or 0, 0.0) / acc[tallest], abs=0.01)
    assert "test_accuracy" in page.inner_text("#inspector-metrics table.kv")


def test_live_updates(
    page: Any, dev_server: Server, api: httpx.Client, db_url: str, tmp_path: Path
) -> None:
    job = submit(api)
    open_job(page, dev_server.url, job["id"])
    page.evaluate("window.__sameDocument = true")
    assert page.inner_text("#job-status").startswith("running")
    seen = {len(drawn(page))}
    worker = threading.Thread(target=ride, args=(db_url, job["id"], 0.25), daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    while worker.is_alive() and time.monotonic() < deadline:
        seen.add(len(drawn(page)))
        time.sleep(0.1)
    worker.join(1)
    final = api.get(f"/jobs/{job['id']}").json()
    assert final["status"] == "succeeded"
    page.wait_for_function(
        "n => document.querySelectorAll('#tree [data-node-id]').length === n", arg=final["nodes"]
    )
    page.wait_for_function("document.querySelector('#live').textContent === 'finished'")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    growing = sorted(n for n in seen if 0 < n < final["nodes"])
    assert len(growing) >= 3, f"the page showed only these counts while running: {sorted(seen)}"
    assert page.inner_text("#job-status").startswith("succeeded")
    shot(page, tmp_path, "dashboard-live")


def test_a_long_ride_shows_its_steps_while_it_runs(
    page: Any, dev_server: Server, api: httpx.Client, db_url: str, tmp_path: Path
) -> None:
    """A ride of thousands of steps: the header counts its steps before the node is drawn."""
    long_ride = {"step_rule": "fixed", "alpha": 1e-4, "max_ride_steps": 6000, "max_nodes": 2}
    r = api.post("/jobs", json={"problem": "toy2d", "params": {}, "settings": long_ride})
    job = r.json()
    worker = threading.Thread(target=ride, args=(db_url, job["id"]), daemon=True)
    worker.start()
    open_job(page, dev_server.url, job["id"])
    page.wait_for_function(
        "() => { const b = document.querySelector('#job-riding');"
        " return !b.hidden && Number(b.dataset.steps) > 0; }",
        timeout=60_000,
    )
    text = page.inner_text("#job-riding")
    assert text.startswith("· riding 1 branch:") and "steps so far" in text
    assert len(drawn(page)) == 1  # only the root: the ride is not in the tree yet
    shot(page, tmp_path, "dashboard-riding")
    worker.join(120)
    page.wait_for_function("document.querySelector('#live').textContent === 'finished'")
    assert page.is_hidden("#job-riding") and len(drawn(page)) == 2


def test_crossplay_view(page: Any, dev_server: Server, finished_job: dict, tmp_path: Path) -> None:
    """The hook renders both shapes: the documented one and ``ridgerider crossplay --json``'s."""
    open_job(page, dev_server.url, finished_job["id"])
    assert page.locator("#crossplay").is_hidden()  # the API has no cross-play for this job
    keys = ["0+", "0-", "1+"]
    matrix = [[1.0, 0.2, 0.0], [0.2, 0.9, 0.1], [0.0, 0.1, 0.6]]
    rows = [
        {"fingerprint": k, "xp": sum(r) / 3, "xp_std": 0.05 * i, "sp": r[i]}
        for i, (k, r) in enumerate(zip(keys, matrix, strict=True))
    ]
    report = {"fingerprints": rows, "matrix": {"labels": keys, "values": matrix}}
    for data in ({"fingerprints": rows, "matrix": matrix}, report):
        assert page.evaluate("d => window.ridgerider.renderCrossplay(d)", data) is True
        assert page.locator("#crossplay").is_visible()
        cells = page.eval_on_selector_all(
            "#xp-heatmap rect.cell",
            "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.textContent])",
        )
        assert len(cells) == 9
        for i, j, title in cells:
            assert title.startswith(f"{keys[i]} × {keys[j]}: ")
            assert float(title.split(": ")[1]) == pytest.approx(matrix[i][j])
        bars = page.eval_on_selector_all("#xp-bars rect.bar", "els => els.map(e => e.textContent)")
        assert [b.split(":")[0] for b in bars] == keys
        assert page.locator("#xp-bars line.err").count() == 2  # the first has no spread
    shot(page, tmp_path, "dashboard-crossplay", "#crossplay")
    bad = {"fingerprints": rows, "matrix": [[1.0]]}
    assert page.evaluate("d => window.ridgerider.renderCrossplay(d)", bad) is False
    assert page.locator("#crossplay").is_hidden()


def test_large_tree_opens_with_deep_levels_collapsed(
    page: Any, dev_server: Server, api: httpx.Client, db_url: str
) -> None:
    """Past 12,000 nodes the deepest levels start collapsed; every node is accounted for."""
    job_id = render_benchmark().build_job(db_url, 12_500, seed=3)
    nodes = api.get(f"/jobs/{job_id}/tree").json()["nodes"]
    assert len(nodes) == 12_500
    open_job(page, dev_server.url, job_id)
    assert page.evaluate("document.body.dataset.treeFirst") == "500"  # drawn before the rest
    got = drawn(page)
    assert 0 < len(got) <= 12_000
    collapsed = page.eval_on_selector_all(
        "#tree .node.collapsed", "els => els.map(e => Number(e.dataset.nodeId))"
    )
    badges = page.eval_on_selector_all("#tree .badge", "els => els.map(e => e.textContent)")
    assert len(badges) == len(collapsed) > 0
    size = {n["id"]: 1 for n in nodes}  # subtree sizes, children before parents
    for n in sorted(nodes, key=lambda n: -n["depth"]):
        if n["parent_id"] is not None:
            size[n["parent_id"]] += size[n["id"]]
    assert sorted(int(b.lstrip("+")) for b in badges) == sorted(size[i] - 1 for i in collapsed)
    assert len(got) + sum(int(b.lstrip("+")) for b in badges) == len(nodes)
    by_key = {n["key"]: n["id"] for n in nodes}
    assert all(by_key[f] == i for i, f in got)
    page.click("#expand-all")
    assert len(drawn(page)) == len(nodes)


def test_token_required_outside_dev_mode(browser: Any, db_url: str, finished_job: dict) -> None:
    """With auth on, nothing is shown until a valid token is given; it lives in the session."""
    storage = SQLStorage(db_url)
    try:
        _, secret = accounts.create_token(storage, "browser-user")
    finally:
        storage.close()
    app = create_app(Settings(database_url=db_url, dev=False, workers=0))
    context = browser.new_context()
    try:
        with Server(app) as server:
            page = context.new_page()
            page.goto(server.url + f"/jobs/{finished_job['id']}")
            page.wait_for_selector("#login:not([hidden])")
            assert page.locator("#job-view").is_hidden()
            assert page.locator("#tree [data-node-id]").count() == 0
            page.fill("#token", "rr_not-a-token")
            page.click("#login-form button")
            page.wait_for_function(
                "document.querySelector('#login-error').textContent.includes('refused')"
            )
            assert page.locator("#jobs-view").is_hidden()
            assert page.evaluate("sessionStorage.getItem('ridgerider.token')") is None
            page.fill("#token", secret)
            page.click("#login-form button")
            # This user owns no job: the deep link to someone else's job is "not found".
            page.wait_for_selector("#error:not([hidden])")
            assert page.evaluate("sessionStorage.getItem('ridgerider.token')") == secret
            page.goto(server.url + "/")
            page.wait_for_selector("#jobs-view:not([hidden])")
            assert page.locator("tr[data-job-id]").count() == 0
            assert page.locator("#signout").is_visible()
    finally:
        context.close()


def test_crossplay_page_draws_the_report(
    page: Any, dev_server: Server, api: Any, tmp_path: Path
) -> None:
    """``/crossplay/{id}``: a real run's progress, then its figure, equal to the API's report."""
    body = {"problem": "lever-game", "replicates": 2, "fingerprints": 2, "seed": 1}
    r = api.post("/crossplay", json=body)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    page.goto(f"{dev_server.url}/crossplay/{run_id}")
    page.wait_for_selector("#crossplay-view:not([hidden])")
    page.wait_for_selector("#xp-run:not([hidden])", timeout=300_000)
    report = api.get(f"/crossplay/{run_id}/result").json()
    labels, values = report["matrix"]["labels"], report["matrix"]["values"]
    assert page.text_content("#xp-status") == "succeeded"
    assert page.text_content("#xp-progress").startswith("2 of 2 replicates")
    cells = page.eval_on_selector_all(
        "#xp-run .xp-heatmap rect.cell",
        "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.textContent])",
    )
    assert len(cells) == len(labels) ** 2
    for i, j, title in cells:
        assert title.startswith(f"{labels[i]} × {labels[j]}: ")
        assert float(title.split(": ")[1]) == pytest.approx(values[i][j], abs=1e-3)
    bars = page.eval_on_selector_all(
        "#xp-run .xp-bars rect.bar", "els => els.map(e => e.textContent)"
    )
    assert [b.split(":")[0] for b in bars] == [f["fingerprint"] for f in report["fingerprints"]]
    assert f"Chosen fingerprint {report['chosen']['fingerprint']}:" in page.text_content(
        "#xp-chosen"
    )
    shot(page, tmp_path, "dashboard-crossplay-run", "#crossplay-view")
    page.goto(dev_server.url)  # the jobs page lists the run and links to its page
    link = page.wait_for_selector(f'#xp-list tr[data-crossplay-id="{run_id}"] a')
    assert page.text_content(f'#xp-list tr[data-crossplay-id="{run_id}"]').count("succeeded") == 1
    link.click()
    page.wait_for_selector("#xp-run:not([hidden])")
    assert page.url.endswith(f"/crossplay/{run_id}")
    page.goto(f"{dev_server.url}/crossplay/{run_id + 1000}")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Not found."
