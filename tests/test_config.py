"""One configuration: each ``RIDGERIDER_*`` variable is a field of ``config.Settings``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.config import ENV_PREFIX, Settings
from ridgerider.core.errors import SettingsError
from ridgerider.core.settings import RRSettings

SRC = Path(__file__).resolve().parents[1] / "src" / "ridgerider"


def test_every_variable_named_in_the_code_is_a_settings_field() -> None:
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    named = {
        m.group(0)
        for path in SRC.rglob("*.py")
        for m in re.finditer(r"RIDGERIDER_[A-Z_]+[A-Z]", path.read_text())
    }
    assert named, "the scan finds the variables the code mentions"
    assert named <= fields, named - fields


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIDGERIDER_RAY_ADDRESS", "auto")
    monkeypatch.setenv("RIDGERIDER_WORKERS", "3")
    s = Settings()
    assert (s.ray_address, s.workers) == ("auto", 3)
    assert Settings(workers=5).workers == 5  # arguments win over the environment


def test_cli_database_default_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["jobs", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env.db").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"alpha": -1.0}, "alpha"),
        ({"order": "sideways"}, "order"),
        ({"alpha": 0.1, "alpha_min": 0.5}, "alpha_min"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_settings_errors_carry_their_field(changes: dict, field: str) -> None:
    with pytest.raises(SettingsError) as info:
        RRSettings(**changes)
    assert info.value.field == field
    assert field in info.value.message


def test_unknown_setting_names_itself() -> None:
    with pytest.raises(SettingsError) as info:
        RRSettings.from_dict({"alpha": 0.1, "bogus": 1})
    assert info.value.field == "bogus"
