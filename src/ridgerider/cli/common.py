"""What every command shares: the consoles, shared options, input parsing, exit code 2.

Options that name a deployment setting (``--database-url``, ``--redis-url``, ``--ray-address``)
take their default from :class:`ridgerider.config.Settings`, i.e. the ``RIDGERIDER_*``
environment, read when the command runs. A URL with a password on the command line shows in
``ps``: ``--database-url-file`` / ``--redis-url-file`` (or ``RIDGERIDER_DATABASE_URL_FILE``,
``RIDGERIDER_DATABASE_URL``, ...) keep it out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.core import ParameterSource
from pydantic import TypeAdapter, ValidationError
from rich.console import Console

from ridgerider.cli.main import QUIET_KEY, configure_logging
from ridgerider.config import ENV_PREFIX, Settings, read_url_file

if TYPE_CHECKING:  # the engine loads only inside the commands that use it
    from ridgerider.core.settings import RRSettings
    from ridgerider.workers.registry import PoolEntry
    from ridgerider.workers.runner import RayPlan

__all__ = [
    "DATABASE_URL",
    "JSON_PATH",
    "POOL",
    "QUIET",
    "RAY_ADDRESS",
    "REDIS_URL",
    "WORKERS",
    "build_settings",
    "check_json_path",
    "coerce_settings",
    "config_default",
    "console",
    "job_call",
    "out",
    "parse_pairs",
    "ray_address_option",
    "ray_plan",
    "say_pool",
    "url_option",
    "usage_error",
]

console = Console(stderr=True)
out = Console()

_F = TypeVar("_F", bound=Callable[..., Any])


def _settings() -> Settings:
    """The ``RIDGERIDER_*`` settings; exit 2 naming what is wrong (never echoing a value)."""
    try:
        return Settings()
    except ValidationError as exc:
        why = "; ".join(
            (f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        usage_error(why)


def config_default(name: str) -> Any:
    """A click default read from the ``RIDGERIDER_*`` environment when the command runs."""
    return lambda: getattr(_settings(), name)


def usage_error(message: str) -> NoReturn:
    """Report bad input and exit with status 2 (click's usage-error convention)."""
    raise click.UsageError(message)


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings of a repeated option as a dict (exit 2 on a malformed one)."""
    parsed: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            usage_error(f"{option} expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def coerce_settings(raw: dict[str, str]) -> dict[str, Any]:
    """Convert ``--setting`` strings to the types of :class:`RRSettings` fields.

    A setting that may be ``None`` (``max_depth``) takes the word ``none``: no limit.
    """
    from ridgerider.core.settings import RRSettings
    from ridgerider.schemas.settings import NO_LIMIT, NULLABLE

    types = {name: type(value) for name, value in RRSettings().to_dict().items()}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in types:
            usage_error(f"setting {key!r}: unknown (known: {', '.join(sorted(types))})")
        kind = types[key]
        if key in NULLABLE and value.lower() == NO_LIMIT:
            result[key] = None
            continue
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                result[key] = value.lower() in ("true", "1", "yes")
            else:
                result[key] = kind(value)
        except ValueError:
            also = f" or {NO_LIMIT!r}" if key in NULLABLE else ""
            usage_error(f"setting {key!r}: expected {kind.__name__}{also}, got {value!r}")
    return result


def build_settings(problem_defaults: dict[str, Any], overrides: dict[str, Any]) -> RRSettings:
    """The problem's default settings with ``overrides``; exit 2 naming a bad setting."""
    from ridgerider.core.errors import SettingsError
    from ridgerider.core.settings import RRSettings

    try:
        return RRSettings(**{**problem_defaults, **overrides})
    except SettingsError as exc:
        usage_error(f"setting {exc.field}: {exc.message}")


def job_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a runner call, turning an unknown job or a bad value into exit code 2."""
    from ridgerider.workers import runner

    try:
        return fn(*args, **kwargs)
    except runner.JobNotFoundError as exc:
        usage_error(f"JOB: {exc}")
    except ValueError as exc:
        usage_error(str(exc))


def check_json_path(json_path: Path | None) -> None:
    """Refuse a ``--json`` path whose folder does not exist (before any work)."""
    if json_path is not None and not json_path.parent.exists():
        usage_error(f"--json: folder {str(json_path.parent)!r} does not exist")


def url_option(setting: str, help_text: str) -> Callable[[_F], _F]:
    """``--<setting>`` and ``--<setting>-file`` (the URL read from a file), one parameter.

    The command gets ``setting``: the URL given, or read from the file, or the environment's
    (``RIDGERIDER_<SETTING>``, or the file ``RIDGERIDER_<SETTING>_FILE`` names). Giving both
    options exits 2.
    """
    flag = "--" + setting.replace("_", "-")
    key = f"ridgerider.{setting}_file"

    def remember(ctx: click.Context, param: click.Parameter, path: Path | None) -> None:
        if path is not None:  # eager: seen before the URL option
            ctx.meta[key] = path

    def resolve(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
        path = ctx.meta.get(key)
        if path is None:
            return url
        if ctx.get_parameter_source(setting) is ParameterSource.COMMANDLINE:
            usage_error(f"{flag} and {flag}-file: give one of them")
        try:
            return read_url_file(path)
        except ValueError as exc:
            usage_error(f"{flag}-file {exc}")

    def decorate(fn: _F) -> _F:
        fn = click.option(
            f"{flag}-file",
            type=click.Path(dir_okay=False, path_type=Path),
            is_eager=True,
            expose_value=False,
            callback=remember,
            help=f"read {flag} from this file (e.g. a mounted secret)",
        )(fn)
        return click.option(
            flag,
            setting,
            default=config_default(setting),
            callback=resolve,
            help=f"{help_text}; shows in ps with a password: prefer {flag}-file or "
            f"{ENV_PREFIX}{setting.upper()}",
        )(fn)

    return decorate


DATABASE_URL = url_option(
    "database_url", "archive database (default: a SQLite file in the user's data folder)"
)
REDIS_URL = url_option("redis_url", "Redis frontier (optional)")
JSON_PATH = click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write a report"
)


def _quiet(ctx: click.Context, param: click.Parameter, quiet: bool) -> bool:
    return quiet or bool(ctx.meta.get(QUIET_KEY))


def _verbose(ctx: click.Context, param: click.Parameter, verbose: int) -> None:
    configure_logging(verbose)


def QUIET(fn: _F) -> _F:  # noqa: N802 - a decorator named like the shared options above
    """``--quiet`` and ``-v/--verbose``, as the group's (``ridgerider --quiet run ...``).

    ``--quiet`` (``quiet``): no progress bar or table; also set by the group's ``--quiet``.
    ``--verbose``: log records on stderr (``-v`` INFO, ``-vv`` DEBUG).
    """
    fn = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_verbose,
        help="log what happens on stderr (-v: INFO, -vv: DEBUG)",
    )(fn)
    return click.option(
        "-q", "--quiet", is_flag=True, callback=_quiet, help="no progress bar or table"
    )(fn)


WORKERS = click.option(
    "--workers",
    type=click.IntRange(0, 4096),
    default=0,
    show_default=True,
    help="workers: a running `ridgerider worker` pool on this archive, else N Ray workers "
    "(a local Ray is started on demand); 0 rides in this process",
)

POOL = click.option(
    "--pool/--no-pool",
    "use_pool",
    default=True,
    show_default=True,
    help="with --workers: leave the job to a running `ridgerider worker` pool on this archive",
)


def ray_address_option(help_text: str) -> Any:
    """``--ray-address`` with its own help text, defaulting to ``RIDGERIDER_RAY_ADDRESS``."""
    return click.option("--ray-address", default=config_default("ray_address"), help=help_text)


RAY_ADDRESS = ray_address_option(
    "with --workers: join this Ray cluster (e.g. auto, host:6379) instead of a local Ray"
)


def ray_plan(workers: int, ray_address: str | None, use_pool: bool = True) -> RayPlan | None:
    """``--workers N`` (N >= 1) as a Ray plan; ``None`` (in-process) for 0.

    With ``use_pool`` (``--pool``, the default) a running ``ridgerider worker`` pool on the
    same archive rides the job instead, and a line says so. Ray itself is imported only if
    the plan starts workers (0.4 s that a job left to a pool does not pay).
    """
    if workers == 0:
        if ray_address:
            usage_error("--ray-address needs --workers >= 1")
        return None
    from ridgerider.workers.runner import RayPlan

    def on_pool(pools: list[PoolEntry], n: int) -> None:
        say_pool(pools, n, workers)

    return RayPlan(workers, ray_address, use_pool=use_pool, on_pool=on_pool)


def say_pool(pools: list[PoolEntry], n: int, asked: int) -> None:
    """Say that running ``pools`` ride the job with ``n`` workers (``--workers asked``)."""
    pids = ", ".join(str(p.pid) for p in pools)
    more = "" if n == asked else f" (--workers {asked} asked for)"
    console.print(f"riding on the running worker pool (pid {pids}): {n} workers{more}")


def check_labels(name: str | None, tags: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``--name`` and ``--tag`` checked as the API checks them (exit 2 naming the option)."""
    from ridgerider.schemas.jobs import MAX_TAGS, JobName, Tag

    checks: list[tuple[str, Any, Any]] = [("--tag", TypeAdapter(Tag), t) for t in tags]
    if name is not None:
        checks.insert(0, ("--name", TypeAdapter(JobName), name))
    for option, adapter, value in checks:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            usage_error(f"{option} {value!r}: {exc.errors()[0]['msg']}")
    distinct = tuple(dict.fromkeys(tags))
    if len(distinct) > MAX_TAGS:
        usage_error(f"--tag: at most {MAX_TAGS} tags, got {len(distinct)}")
    return name, distinct
