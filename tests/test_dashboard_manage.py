"""Managing jobs in the dashboard (headless Chromium): the jobs list's name, tags, filters,
Cancel and Delete (behind an in-page dialog), the compare view and the cross-play figure.

The harness is ``tests/dashboard/browser.py``'s (the real app under uvicorn on a SQLite archive,
jobs ridden in this process). Every check compares what the page shows with what the API
answers; the jobs list and the compare view are checked at three window sizes, and at 414 px
wide the page must not scroll sideways (wide tables scroll inside their own box).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.needs import MARKS, require

pytestmark = MARKS
require()


from dashboard.browser import Server, api, browser, db_url, dev_server, ride, shot  # noqa: E402

__all__ = ["api", "browser", "db_url", "dev_server"]  # fixtures

SIZES = {"wide": (1440, 900), "tablet": (1024, 768), "phone": (414, 896)}
TREE = {"problem": "tree-rl", "params": {"depth": 4, "tree_seed": 1}}


def post(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def xp_run(api: httpx.Client) -> int:
    """A small cross-play run, submitted first so that it runs while the other tests do."""
    body = {"problem": "lever-game", "replicates": 2, "fingerprints": 2, "seed": 1}
    r = api.post("/crossplay", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture(scope="module")
def jobs(api: httpx.Client, db_url: str, xp_run: int) -> dict[str, dict[str, Any]]:
    """Three finished jobs to filter and compare: two tree-rl searches (14 and 8 nodes) that
    differ in depth, tree, seed and order but share some fingerprints, and a lever-game one."""
    deeper = {"problem": "tree-rl", "params": {"depth": 5, "tree_seed": 4}}
    made = {
        "alpha": post(api, {**deeper, "seed": 2, "name": "Alpha run", "tags": ["sweep", "a"]}),
        "beta": post(
            api,
            {
                **TREE,
                "seed": 3,
                "name": "beta run",
                "tags": ["sweep"],
                "settings": {"order": "dfs"},
            },
        ),
        "lever": post(
            api,
            {
                "problem": "lever-game",
                "name": "lever",
                "tags": ["games"],
                "settings": {"max_nodes": 4},
            },
        ),
    }
    for job in made.values():
        ride(db_url, job["id"])
    return {k: api.get(f"/jobs/{j['id']}").json() for k, j in made.items()}


def open_page(browser: Any, size: str) -> Any:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def close(page: Any) -> None:
    errors = page.errors
    page.context.close()
    assert not errors, errors


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def listed(page: Any) -> list[int]:
    return page.eval_on_selector_all(
        "#jobs-table tbody tr[data-job-id]", "els => els.map(e => Number(e.dataset.jobId))"
    )


def api_ids(api: httpx.Client, **query: str) -> list[int]:
    return [j["id"] for j in api.get("/jobs", params={"limit": 1000, **query}).json()["items"]]


def open_list(page: Any, base: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("#jobs-view:not([hidden]) tr[data-job-id]")


def test_jobs_list_names_tags_and_filters(
    browser: Any, dev_server: Server, api: httpx.Client, jobs: dict, tmp_path: Path
) -> None:
    waiting = post(api, {**TREE, "name": "waiting", "tags": ["b"]})  # nothing rides it
    page = open_page(browser, "wide")
    try:
        open_list(page, dev_server.url)
        assert sorted(listed(page)) == sorted(api_ids(api))
        # Cancel only where there is something to cancel; Delete everywhere.
        assert page.locator(f'tr[data-job-id="{waiting["id"]}"] [data-action=cancel]').count() == 1
        for job in jobs.values():
            actions = page.locator(f'tr[data-job-id="{job["id"]}"] [data-action]')
            assert actions.evaluate_all("bs => bs.map(b => b.dataset.action)") == ["delete"]
        for job in jobs.values():
            cell = page.locator(f'tr[data-job-id="{job["id"]}"] [data-field=name]')
            assert cell.locator(".name").inner_text() == job["name"]
            tags = cell.locator("[data-tag]").all_inner_texts()
            assert tags == job["tags"]
        # Each filter shows what the API's filter of the same name answers (newest first).
        page.fill("#filter-name", "RUN")
        assert listed(page) == api_ids(api, name="RUN") == [jobs["beta"]["id"], jobs["alpha"]["id"]]
        page.fill("#filter-name", "")
        page.select_option("#filter-tag", "sweep")
        assert listed(page) == api_ids(api, tag="sweep")
        page.select_option("#filter-problem", "lever-game")  # filters combine
        assert listed(page) == api_ids(api, tag="sweep", problem="lever-game") == []
        page.select_option("#filter-tag", "")
        assert listed(page) == api_ids(api, problem="lever-game")
        page.select_option("#filter-problem", "")
        page.select_option("#filter-status", "succeeded")
        assert listed(page) == api_ids(api, status="succeeded")
        page.select_option("#filter-status", "")
        # A tag in a row filters by it.
        page.click(f'tr[data-job-id="{jobs["lever"]["id"]}"] [data-tag="games"]')
        assert page.input_value("#filter-tag") == "games"
        assert listed(page) == api_ids(api, tag="games") == [jobs["lever"]["id"]]
        page.select_option("#filter-tag", "")
        for job in (jobs["alpha"], jobs["beta"]):
            page.check(f'tr[data-job-id="{job["id"]}"] input.pick')
        assert page.inner_text("#compare-button") == "Compare 2"
        shot(page, tmp_path, "dashboard-jobs")
        # At every window size each row keeps its tick box and actions within reach, and the
        # page never scrolls sideways (the table scrolls inside its own box).
        for size in SIZES.values():
            page.set_viewport_size(dict(zip(("width", "height"), size, strict=True)))
            no_sideways_scroll(page)
            row = page.locator(f'tr[data-job-id="{jobs["alpha"]["id"]}"]')
            row.locator("[data-action=delete]").scroll_into_view_if_needed()
            assert row.locator("[data-action=delete]").is_visible()
            assert row.locator("input.pick").is_visible()
            assert page.locator("#filter-name").is_visible()
    finally:
        close(page)


def test_cancel_in_the_list_and_on_the_job_page(
    browser: Any, dev_server: Server, api: httpx.Client, jobs: dict
) -> None:
    queued = [post(api, {**TREE, "name": f"to cancel {i}"})["id"] for i in range(2)]
    page = open_page(browser, "wide")
    try:
        open_list(page, dev_server.url)
        row = page.locator(f'tr[data-job-id="{queued[0]}"]')
        status = api.get(f"/jobs/{queued[0]}").json()["status"]
        assert status in ("queued", "running")  # nothing rides it in this module
        assert row.locator(".status").inner_text() == status
        assert (
            page.locator(f'tr[data-job-id="{jobs["alpha"]["id"]}"] [data-action=cancel]').count()
            == 0
        )
        row.locator("[data-action=cancel]").click()
        page.wait_for_function(
            "id => document.querySelector(`tr[data-job-id='${id}'] .status`).textContent"
            " === 'cancelled'",
            arg=queued[0],
        )
        assert api.get(f"/jobs/{queued[0]}").json()["status"] == "cancelled"
        assert row.locator("[data-action=cancel]").count() == 0  # nothing left to cancel
        # The job's own page has the same action.
        page.goto(f"{dev_server.url}/jobs/{queued[1]}")
        page.wait_for_selector("#job-actions [data-action=cancel]")
        page.click("#job-actions [data-action=cancel]")
        page.wait_for_function(
            "document.querySelector('#job-status').textContent.startsWith('cancelled')"
        )
        assert api.get(f"/jobs/{queued[1]}").json()["status"] == "cancelled"
        assert page.locator("#job-actions [data-action=cancel]").count() == 0
        page.wait_for_function("document.querySelector('#live').textContent === 'finished'")
        assert page.locator("#error").is_hidden()
    finally:
        close(page)


def test_the_job_page_names_the_solution_validation_chose(
    browser: Any, dev_server: Server, api: httpx.Client, db_url: str, jobs: dict
) -> None:
    body = {
        "problem": "colored-digits",
        "params": {"hidden": "4"},
        "settings": {"method": "exact", "max_depth": 1, "n_ridges": 2, "max_nodes": 5},
    }
    job = post(api, body)
    ride(db_url, job["id"])
    chosen = api.get(f"/jobs/{job['id']}/chosen").json()["chosen"]
    assert chosen is not None
    page = open_page(browser, "wide")
    try:
        page.goto(f"{dev_server.url}/jobs/{job['id']}")
        page.wait_for_selector("#job-chosen:not([hidden]) a")
        text = page.inner_text("#job-chosen")
        assert chosen["key"] in text
        shown = {k: float(v) for k, v in re.findall(r"(train|validation|test) ([0-9.]+)", text)}
        assert set(shown) == {"train", "validation", "test"}
        for key, value in shown.items():
            assert value == pytest.approx(chosen["metrics"][f"{key}_accuracy"], abs=5e-3)
        page.click("#job-chosen a")
        page.wait_for_function(
            "id => document.querySelector('#inspector').dataset.nodeId === String(id)",
            arg=chosen["node_id"],
        )
        # a problem that holds no data out shows no chosen solution
        page.goto(f"{dev_server.url}/jobs/{jobs['alpha']['id']}")
        page.wait_for_selector("#job-view:not([hidden])")
        page.wait_for_function("document.body.dataset.treeReady")
        assert page.locator("#job-chosen").is_hidden()
    finally:
        close(page)


def test_delete_asks_first(
    browser: Any, dev_server: Server, api: httpx.Client, db_url: str, tmp_path: Path
) -> None:
    lever = {"problem": "lever-game", "settings": {"max_nodes": 3}}
    ids = [post(api, {**lever, "name": f"to delete {i}"})["id"] for i in range(3)]
    kept = post(api, {**lever, "name": "kept"})["id"]  # the list is never empty at the end
    ride(db_url, ids[0])
    assert api.get(f"/jobs/{ids[0]}/nodes").json()["items"]
    page = open_page(browser, "wide")
    try:
        open_list(page, dev_server.url)
        row = page.locator(f'tr[data-job-id="{ids[0]}"]')
        # Cancelling the dialog deletes nothing.
        row.locator("[data-action=delete]").click()
        page.wait_for_selector("dialog#confirm[open]")
        assert f"Delete job #{ids[0]}?" in page.inner_text("#confirm-text")
        shot(page, tmp_path, "dashboard-delete-dialog")
        page.click("#confirm-cancel")
        assert page.locator("dialog#confirm[open]").count() == 0
        assert api.get(f"/jobs/{ids[0]}").status_code == 200
        assert row.count() == 1
        # Confirmed: the job leaves the list and the API (its nodes too).
        row.locator("[data-action=delete]").click()
        page.click("#confirm-ok")
        row.wait_for(state="detached")
        assert api.get(f"/jobs/{ids[0]}").status_code == 404
        assert api.get(f"/jobs/{ids[0]}/nodes").status_code == 404
        assert ids[0] not in api_ids(api)
        # A job deleted elsewhere: the page's Delete reports the API's refusal.
        assert api.delete(f"/jobs/{ids[1]}").status_code == 204
        page.click(f'tr[data-job-id="{ids[1]}"] [data-action=delete]')
        page.click("#confirm-ok")
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == (
            f"Deleting job #{ids[1]} failed: HTTP 404: job {ids[1]} not found"
        )
        # From the job's page: confirmed, back to the list, without it.
        page.goto(f"{dev_server.url}/jobs/{ids[2]}")
        page.click("#job-actions [data-action=delete]")
        page.click("#confirm-ok")
        page.wait_for_selector("#jobs-view:not([hidden])")
        assert page.url == dev_server.url + "/"
        page.wait_for_selector(f'tr[data-job-id="{kept}"]')
        assert ids[2] not in listed(page)
        assert api.get(f"/jobs/{ids[2]}").status_code == 404
    finally:
        close(page)


def settings_of(job: dict) -> dict[str, Any]:
    out = {"seed": job["seed"], "accelerator": job["accelerator"]}
    out.update({f"params.{k}": v for k, v in job["params"].items()})
    out.update({f"settings.{k}": v for k, v in job["settings"].items()})
    return out


def test_compare_view(
    browser: Any, dev_server: Server, api: httpx.Client, jobs: dict, tmp_path: Path
) -> None:
    chosen = [jobs[k] for k in ("alpha", "beta", "lever")]
    ids = sorted(j["id"] for j in chosen)
    page = open_page(browser, "wide")
    try:
        open_list(page, dev_server.url)
        assert page.is_disabled("#compare-button")
        for j in chosen:
            page.check(f'tr[data-job-id="{j["id"]}"] input.pick')
        page.click("#compare-button")
        page.wait_for_selector("#cmp-body:not([hidden])")
        assert page.url == f"{dev_server.url}/compare?jobs={','.join(map(str, ids))}"
        check_compare(page, api, jobs, ids)
        no_sideways_scroll(page)
        shot(page, tmp_path, "dashboard-compare")
        for size in (SIZES["tablet"], SIZES["phone"]):  # the address is a deep link
            page.set_viewport_size(dict(zip(("width", "height"), size, strict=True)))
            page.reload()
            page.wait_for_selector("#cmp-body:not([hidden])")
            check_compare(page, api, jobs, ids)
            no_sideways_scroll(page)
    finally:
        close(page)


def check_compare(page: Any, api: httpx.Client, jobs: dict, ids: list[int]) -> None:
    """The compare view of ``ids`` shows what the API answers for those jobs."""
    heads = page.eval_on_selector_all(
        "#cmp-jobs thead th[data-job-id]", "els => els.map(e => Number(e.dataset.jobId))"
    )
    assert heads == ids
    records = {i: api.get(f"/jobs/{i}").json() for i in ids}
    sols = {i: api.get(f"/jobs/{i}/solutions").json() for i in ids}

    def row(key: str) -> list[str]:
        return page.locator(f'#cmp-jobs tr[data-key="{key}"] td').all_inner_texts()

    assert row("problem") == [records[i]["problem"] for i in ids]
    assert row("name") == [records[i]["name"] for i in ids]
    assert row("nodes") == [str(records[i]["nodes"]) for i in ids]
    assert row("solutions") == [str(len(sols[i])) for i in ids]
    best = [min(s["loss"] for s in sols[i]) for i in ids]
    assert [float(v) for v in row("best_loss")] == pytest.approx(best, rel=1e-3)
    # The settings that differ (and only those) are marked.
    flat = [settings_of(records[i]) for i in ids]
    keys = {k for f in flat for k in f}
    differ = {k for k in keys if len({repr(f.get(k)) for f in flat}) > 1}
    assert {"seed", "settings.order", "params.depth"} <= differ
    marked = page.eval_on_selector_all(
        "#cmp-jobs tr[data-differs]", "els => els.map(e => e.dataset.key)"
    )
    assert set(marked) == differ
    page.check("#cmp-only-diff")  # the rest can be hidden
    shown = page.eval_on_selector_all(
        "#cmp-jobs tr.setting", "els => els.filter(e => e.offsetParent).map(e => e.dataset.key)"
    )
    assert set(shown) == differ
    page.uncheck("#cmp-only-diff")
    # Each job's solutions are the API's: fingerprint, loss and the problem's scalar metrics
    # (tree-rl's reward, lever-game's return).
    for i in ids:
        card = page.locator(f'#cmp-solutions .card[data-job-id="{i}"]')
        got = card.locator("tbody tr").evaluate_all(
            "rs => rs.map(r => Object.fromEntries([...r.querySelectorAll('[data-field]')]"
            ".map(c => [c.dataset.field, c.textContent])))"
        )
        assert [g["fingerprint"] for g in got] == [s["key"] for s in sols[i]]
        for g, sol in zip(got, sols[i], strict=True):
            assert float(g["loss"]) == pytest.approx(sol["loss"], rel=1e-3)
            numbers = {k: v for k, v in sol["metrics"].items() if isinstance(v, int | float)}
            assert numbers and numbers.keys() <= g.keys()
            for k, v in numbers.items():
                assert float(g[k]) == pytest.approx(v, rel=1e-3, abs=1e-9)
    # The fingerprints found by two jobs or more.
    found = {i: {s["key"] for s in sols[i]} for i in ids}
    shared = {k for k in set().union(*found.values()) if sum(k in f for f in found.values()) >= 2}
    assert shared, "the two tree-rl searches should share fingerprints"
    rows = page.eval_on_selector_all(
        "#cmp-shared tbody tr", "els => els.map(e => e.dataset.fingerprint)"
    )
    assert set(rows) == shared
    # The chart: one dot per solution, per job.
    dots = page.eval_on_selector_all(
        "#cmp-chart circle.dot-point", "els => els.map(e => Number(e.dataset.group))"
    )
    assert [dots.count(g) for g in range(len(ids))] == [len(sols[i]) for i in ids]


def test_compare_refuses_bad_lists(browser: Any, dev_server: Server, jobs: dict) -> None:
    page = open_page(browser, "phone")
    try:
        a = jobs["alpha"]["id"]
        cases = {
            f"{a},999999": "Job #999999 was not found",
            f"{a}": "Pick two to eight jobs",
            ",".join(str(a + i) for i in range(9)): "At most 8 jobs",
            "3,x": "Not a list of job ids",
        }
        page.goto(f"{dev_server.url}/compare?jobs={a},{a}")  # one job, twice
        page.wait_for_selector("#compare-view:not([hidden]) #cmp-error:not([hidden])")
        assert "Pick two to eight jobs" in page.inner_text("#cmp-error")
        for query, message in cases.items():
            page.evaluate(  # in-page navigation, as a link would do
                """q => { document.querySelector("#cmp-error").hidden = true;
                    history.pushState({}, "", `/compare?jobs=${q}`);
                    dispatchEvent(new PopStateEvent("popstate")); }""",
                query,
            )
            page.wait_for_selector("#compare-view:not([hidden]) #cmp-error:not([hidden])")
            assert message in page.inner_text("#cmp-error")
            assert page.locator("#cmp-body").is_hidden()
    finally:
        close(page)


def test_crossplay_figure_matches_the_cli(
    browser: Any, dev_server: Server, api: httpx.Client, xp_run: int, tmp_path: Path
) -> None:
    page = open_page(browser, "wide")
    try:
        page.goto(f"{dev_server.url}/crossplay/{xp_run}")
        page.wait_for_selector("#xp-run:not([hidden])", timeout=300_000)
        report = api.get(f"/crossplay/{xp_run}/result").json()
        rows = report["fingerprints"]
        bars = "#xp-run .xp-bars"
        # The chosen fingerprint's bar is highlighted; self-play is a marker on every bar.
        chosen = page.eval_on_selector_all(
            f"{bars} rect.bar.chosen", "els => els.map(e => e.textContent.split(':')[0])"
        )
        assert chosen == [report["chosen"]["fingerprint"]]
        sp = page.eval_on_selector_all(
            f"{bars} line.dot", "els => els.map(e => Number(e.dataset.value))"
        )
        assert sp == pytest.approx([r["sp"] for r in rows])
        # The self-play agents' cross-play: a dashed line, its value in the legend.
        base = report["baselines"]["self_play"]["xp"]
        line = page.locator(f"{bars} line.hline.baseline")
        assert float(line.get_attribute("data-value")) == pytest.approx(base)
        legend = page.locator(f"{bars} text.legend").all_text_contents()
        assert any(t.startswith("self-play agents' cross-play (") for t in legend)
        shown = next(t for t in legend if t.startswith("self-play agents'"))
        assert float(shown.split("(")[1].rstrip(")")) == pytest.approx(base, abs=5e-3)
        labels = page.locator("#xp-run text.axis-label").all_text_contents()
        assert {"average payoff", "fingerprint (eigen-index, sign)"} <= set(labels)
        assert {"player 1's fingerprint", "player 2's fingerprint"} <= set(labels)
        shot(page, tmp_path, "dashboard-crossplay-page", "#crossplay-view")
        for size in ("tablet", "phone"):  # the figure scales with the window, inside it
            page.set_viewport_size(dict(zip(("width", "height"), SIZES[size], strict=True)))
            no_sideways_scroll(page)
            assert page.locator(f"{bars} rect.bar").count() == len(rows)
            box = page.locator(bars).bounding_box()
            assert box is not None and 0 < box["x"] + box["width"] <= SIZES[size][0]
        # A spread larger than the mean: the error bar stops at the axis, which starts at 0.
        wide = {**report, "fingerprints": [{**r, "xp_std": r["xp"] + 0.3} for r in rows]}
        page.evaluate(
            """async d => {
                const { renderCrossplay } = await import("/ui/crossplay.js");
                renderCrossplay(document.querySelector("#xp-run"), d);
            }""",
            wide,
        )
        zero = float(page.get_attribute(f"{bars} line.axis", "y1"))
        ends = page.eval_on_selector_all(
            f"{bars} line.err",
            "els => els.map(e => [Number(e.getAttribute('y1')), Number(e.dataset.lo)])",
        )
        assert len(ends) == len(rows)
        for bottom, lo in ends:
            assert bottom == pytest.approx(zero) and lo == 0
        ticks = page.locator(f"{bars} text.tick").all_text_contents()
        assert "0" in ticks and not any(t.startswith("-") or t.startswith("−") for t in ticks)
    finally:
        close(page)
