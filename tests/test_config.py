"""One configuration: each ``RIDGERIDER_*`` variable is a field of ``config.Settings``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ridgerider.cli import main
from ridgerider.client._retry import SDK_VARIABLES
from ridgerider.config import CONFIG_VARIABLE, ENV_PREFIX, Settings
from ridgerider.core.errors import SettingsError
from ridgerider.core.settings import RRSettings
from ridgerider.services.archive import mask_url

SRC = Path(__file__).resolve().parents[1] / "src" / "ridgerider"


def test_every_variable_named_in_the_code_is_a_settings_field() -> None:
    """The service's variables are settings; the SDK's own (``from_env``) live in the SDK only."""
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    named = {
        (m.group(0), path.relative_to(SRC).parts[0])
        for path in SRC.rglob("*.py")
        for m in re.finditer(r"RIDGERIDER_[A-Z_]+[A-Z]", path.read_text())
    }
    assert named, "the scan finds the variables the code mentions"
    sdk = {(name, "client") for name in SDK_VARIABLES}
    assert not fields & set(SDK_VARIABLES)
    # The config file's own path is the one variable that cannot be a field of what it fills.
    assert {name for name, _ in named - sdk} <= fields | {CONFIG_VARIABLE}, named - sdk


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


def test_a_url_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql://rr:hunter2@db/rr\n")  # a mounted secret ends in a newline
    monkeypatch.delenv("RIDGERIDER_DATABASE_URL")
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL_FILE", str(secret))
    assert Settings().database_url == "postgresql://rr:hunter2@db/rr"
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", "postgresql://rr:hunter2@db/rr")
    assert Settings().database_url == "postgresql://rr:hunter2@db/rr"  # the same URL twice
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", "postgresql://rr:hunter2@other/rr")
    with pytest.raises(ValidationError, match="name different URLs") as info:
        Settings()
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "why"), [(None, "cannot read it"), ("\n", "empty")], ids=["missing", "empty"]
)
def test_an_unusable_url_file_names_the_file(tmp_path: Path, content: str | None, why: str) -> None:
    path = tmp_path / "redis-url"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError, match=f"RIDGERIDER_REDIS_URL_FILE {path}: {why}"):
        Settings(redis_url_file=path)


def test_settings_never_show_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(database_url="postgresql://rr:hunter2@db/rr", redis_url="redis://:pw2@r")
    assert "hunter2" not in repr(settings) and "pw2" not in repr(settings)
    monkeypatch.setenv("RIDGERIDER_WORKERS", "many")
    with pytest.raises(ValidationError) as info:
        Settings(database_url="postgresql://rr:hunter2@db/rr")
    assert "hunter2" not in str(info.value)  # errors never echo the input


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://rr:hunter2@db:5432/rr", "postgresql+psycopg://rr:***@db:5432/rr"),
        ("redis://:hunter2@r:6379/0", "redis://:***@r:6379/0"),
        ("postgresql://rr@db/rr?password=hunter2&sslmode=require",
         "postgresql://rr@db/rr?password=***&sslmode=require"),
        ("postgresql://rr@db/rr?sslmode=require&sslpassword=hunter2",
         "postgresql://rr@db/rr?sslmode=require&sslpassword=***"),
        ("sqlite:////data/archive.db", "sqlite:////data/archive.db"),
    ],
)  # fmt: skip
def test_mask_url_hides_every_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_cli_reads_the_database_url_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "database-url"
    secret.write_text(f"sqlite:///{tmp_path / 'from-file.db'}\n")
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    result = CliRunner().invoke(main, ["jobs", "--json", "--database-url-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-file.db").exists()  # the option wins over the environment
    assert not (tmp_path / "from-env.db").exists()
    monkeypatch.delenv("RIDGERIDER_DATABASE_URL")
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL_FILE", str(secret))
    (tmp_path / "from-file.db").unlink()
    assert CliRunner().invoke(main, ["jobs", "--json"]).exit_code == 0
    assert (tmp_path / "from-file.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database-url-file", "F", "--database-url", "sqlite:///x.db"],
         "--database-url and --database-url-file: give one of them"),
        (["--redis-url-file", "NOPE"], "--redis-url-file NOPE: cannot read it"),
    ],
)  # fmt: skip
def test_cli_url_file_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "F").write_text(f"sqlite:///{tmp_path / 'a.db'}")
    args = [str(tmp_path / a) if a in ("F", "NOPE") else a for a in args]
    message = message.replace("NOPE", str(tmp_path / "NOPE"))
    result = CliRunner().invoke(main, ["run", "toy2d", "--quiet", *args])
    assert result.exit_code == 2 and message in result.output, result.output


CONFIG = """
[settings]
database_url = "sqlite:///{db}"
workers = 3

[run]
max-nodes = 3
seed = 4
setting = ["alpha=0.5"]

[token.create]
name = "from-config"
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_config_file_defaults_below_the_environment_and_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, CONFIG.format(db=tmp_path / "file.db"))
    monkeypatch.delenv("RIDGERIDER_DATABASE_URL")
    monkeypatch.setenv("RIDGERIDER_CONFIG", str(path))
    assert (Settings().workers, Settings().database_url) == (3, f"sqlite:///{tmp_path / 'file.db'}")
    monkeypatch.setenv("RIDGERIDER_WORKERS", "5")
    assert Settings().workers == 5  # the environment wins over the file
    monkeypatch.setenv("RIDGERIDER_CONFIG", "")
    run = ["run", "toy2d", "-q", "--json", str(tmp_path / "out.json")]
    result = CliRunner().invoke(main, ["--config", str(path), *run])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out.json").read_text())
    assert (report["nodes"], report["seed"]) == (3, 4)  # [run] defaults
    assert (tmp_path / "file.db").exists()  # [settings] database_url, through --config
    result = CliRunner().invoke(main, ["--config", str(path), *run, "--seed", "7"])
    assert json.loads((tmp_path / "out.json").read_text())["seed"] == 7  # the option wins
    result = CliRunner().invoke(main, ["--config", str(path), "token", "create", "--user", "u"])
    assert result.exit_code == 0, result.output
    from ridgerider.services.storage.sql import SQLStorage

    storage = SQLStorage(f"sqlite:///{tmp_path / 'file.db'}")
    try:
        secret = result.output.strip().splitlines()[-1]
        assert storage.find_token(secret).name == "from-config"  # [token.create]
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nmax_node = 3\n", "[run] max_node is not an option of `ridgerider run` (did you"),
        ("[runn]\nx = 1\n", "[runn] is neither [settings] nor a command"),
        ("[settings]\nworkerz = 1\n", "[settings] workerz is not a setting"),
        ("[settings]\nworkers = -1\n", "RIDGERIDER_WORKERS"),
        ("run = 3\n", "run must be a table"),
        ("[run\n", "not TOML"),
    ],
)
def test_a_bad_config_file_is_exit_2_naming_the_key_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("RIDGERIDER_DATABASE_URL", f"sqlite:///{tmp_path / 'untouched.db'}")
    path = _config(tmp_path, text)
    result = CliRunner().invoke(main, ["--config", str(path), "run", "toy2d", "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")
    assert not (tmp_path / "untouched.db").exists()


def test_a_named_config_file_that_is_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIDGERIDER_CONFIG", "/nonexistent/ridgerider.toml")
    result = CliRunner().invoke(main, ["jobs"])
    assert result.exit_code == 2
    assert "RIDGERIDER_CONFIG=/nonexistent/ridgerider.toml: no such file" in result.output


def test_the_speculation_default_is_the_frontiers() -> None:
    from ridgerider.config import Settings
    from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION

    assert Settings().speculation == DEFAULT_SPECULATION
