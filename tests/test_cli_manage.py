"""``run --name/--tag``, ``jobs`` filters and solutions, ``cancel``, ``delete``, ``export``."""

from __future__ import annotations

import csv
import importlib.util
import io
import json

import pytest
from click.testing import CliRunner

from ridgerider.cli import main


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def listed(*args: str) -> list[dict]:
    code, output = invoke("jobs", "--json", *args)
    assert code == 0, output
    return json.loads(output)


@pytest.fixture
def two_jobs(tmp_path) -> tuple[dict, dict]:
    """Two finished toy2d jobs: one named and tagged, one not."""
    reports = []
    for seed, labels in ((3, ["--name", "First try", "--tag", "a", "--tag", "b"]), (4, [])):
        path = tmp_path / f"{seed}.json"
        code, output = invoke("run", "toy2d", "--seed", str(seed), "--json", str(path), *labels)
        assert code == 0, output
        reports.append(json.loads(path.read_text()))
    return reports[0], reports[1]


def test_names_tags_filters_and_the_solutions_column(two_jobs) -> None:
    first, second = two_jobs
    rows = listed()
    assert [r["job_id"] for r in rows] == [second["job_id"], first["job_id"]]
    assert (rows[1]["name"], rows[1]["tags"]) == ("First try", ["a", "b"])
    assert [r["solutions"] for r in rows] == [len(second["solutions"]), len(first["solutions"])]
    assert [r["job_id"] for r in listed("--name", "FIRST")] == [first["job_id"]]
    assert [r["job_id"] for r in listed("--tag", "b", "--problem", "toy2d")] == [first["job_id"]]
    assert listed("--tag", "c") == [] and listed("--problem", "lever-game") == []
    assert listed("--status", "running", "--tag", "a") == []
    code, table = invoke("jobs")
    assert code == 0 and "#a #b" in table
    cells = [c.strip() for c in next(t for t in table.splitlines() if "First try" in t).split("│")]
    assert cells[6] == str(len(first["solutions"])) != "0"  # the solutions column is filled


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--tag", "has space"], "--tag"), (["--name", "x" * 129], "--name")],
)
def test_bad_labels_exit_2_naming_the_option_and_store_nothing(args, needle) -> None:
    code, output = invoke("run", "toy2d", *args)
    assert code == 2 and needle in output
    assert listed() == []


def test_export_cancel_delete(two_jobs, tmp_path) -> None:
    first, second = two_jobs
    job = str(first["job_id"])
    code, text = invoke("export", job)  # CSV of the nodes on standard output
    assert code == 0, text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == first["nodes"] and rows[0]["parent_id"] == ""
    assert sum(r["is_solution"] == "True" for r in rows) == len(first["solutions"])
    out = tmp_path / "sol.json"
    code, text = invoke("export", job, "--format", "json", "--what", "solutions", "-o", str(out))
    assert code == 0 and f"{len(first['solutions'])} solutions" in text
    sols = json.loads(out.read_text())
    assert sorted(s["loss"] for s in sols) == sorted(s["loss"] for s in first["solutions"])
    parquet = tmp_path / "nodes.parquet"
    code, text = invoke("export", job, "--format", "parquet", "-o", str(parquet))
    if importlib.util.find_spec("pyarrow") is None:
        assert code == 2 and "pyarrow" in text and not parquet.exists()
    else:
        assert code == 0 and parquet.stat().st_size > 0
    assert invoke("export", "999")[0] == 2

    code, text = invoke("cancel", job)
    assert code == 1 and "nothing to cancel" in text  # it finished
    for command in (["cancel", "999"], ["delete", "999", "--yes"]):
        code, text = invoke(*command)
        assert code == 2 and "999" in text
    code, text = invoke("delete", job, input="n\n")
    assert code == 1 and "nothing deleted" in text and len(listed()) == 2
    code, text = invoke("delete", job, input="y\n")
    assert code == 0 and "deleted job" in text
    assert [r["job_id"] for r in listed()] == [second["job_id"]]
    assert invoke("show", job)[0] == 2
    assert invoke("delete", str(second["job_id"]), "--yes")[0] == 0 and listed() == []
