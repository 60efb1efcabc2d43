"""The config file's command tables as click defaults (``ctx.default_map``).

``[run]``, ``[serve]``, ... in the config file (see :mod:`ridgerider.config`) give defaults for
that command's options, by the option's long name with ``_`` or ``-`` (``max_nodes`` or
``max-nodes``, ``setting`` for ``--setting``; a repeatable option takes a list);
``[token.create]`` reaches a subcommand.
Options given on the command line win; the environment's ``RIDGERIDER_*`` settings win over the
file's ``[settings]`` table, which the commands read through :class:`ridgerider.config.Settings`.
A table or key that names no command or option is refused with exit code 2, naming it, so a
typo never goes unnoticed.
"""

from __future__ import annotations

import difflib
from typing import Any

import click

__all__ = ["apply_config"]


def _normalise(table: dict[str, Any]) -> dict[str, Any]:
    return {
        key.replace("-", "_"): _normalise(v) if isinstance(v, dict) else v
        for key, v in table.items()
    }


def _resolve(path: Any, where: str, command: click.Command, table: dict[str, Any]) -> dict:
    """``table`` keyed by ``command``'s parameter names (from option or parameter names).

    Raises ``click.BadParameter`` naming a key that is no option of the command.
    """
    if isinstance(command, click.Group):
        out: dict[str, Any] = {}
        for name, sub in table.items():
            child = command.commands.get(name)
            if child is None or not isinstance(sub, dict):
                raise click.BadParameter(f"{path}: [{where}.{name}] is not a subcommand")
            out[name] = _resolve(path, f"{where}.{name}", child, sub)
        return out
    names: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            names[param.name] = param.name
            for opt in param.opts:
                if opt.startswith("--"):
                    names[opt[2:].replace("-", "_")] = param.name
    resolved = {}
    for key, value in table.items():
        if key not in names:
            near = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise click.BadParameter(
                f"{path}: [{where}] {key} is not an option of `ridgerider {where}`{hint}"
            )
        resolved[names[key]] = value
    return resolved


def apply_config(ctx: click.Context, commands: dict[str, Any]) -> None:
    """Load the config file into ``ctx.default_map``; exit 2 naming any unusable part."""
    from ridgerider.config import ConfigFileError, config_path, read_config

    try:
        path = config_path()
        data = read_config(path)
    except ConfigFileError as exc:
        raise click.UsageError(str(exc)) from None
    tables = {k: _normalise(v) for k, v in data.items() if k != "settings"}
    for name in tables:
        if name not in commands:
            raise click.UsageError(f"{path}: [{name}] is neither [settings] nor a command")
    sub = ctx.invoked_subcommand
    if sub in tables:
        command = ctx.command.get_command(ctx, sub)  # type: ignore[attr-defined]
        try:
            tables[sub] = _resolve(path, sub, command, tables[sub])
        except click.BadParameter as exc:
            raise click.UsageError(exc.message) from None
    ctx.default_map = tables
