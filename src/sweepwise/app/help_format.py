"""Help screens without typer's `<type>` column.

typer writes a `<type>` after every parameter in `--help` (`--quiet -q <bool>`,
`target <str>`) and writes a required argument as `{target}` in the usage line, so
flags look as if they took a value. These command classes keep the option's own
metavar (`--store URL`), show none for flags, and name arguments in capitals
(`TARGET`, `[WORDS]...`), as click does.
"""

from __future__ import annotations

from typing import Any

from typer import _click
from typer._click import exceptions as _exceptions
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from sweepwise.core.errors import ConfigError


class _Argument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name


class _Option(TyperOption):
    def display_type_rich(self, ctx: _click.Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return super().display_type_rich(ctx)


def _plain(params: list[Any]) -> list[Any]:
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


def _one_line(exc: _exceptions.UsageError) -> ConfigError:
    """A usage error (an unknown option, a missing argument) as our one line, with where the help is.

    typer prints click's in a box of four or five lines; `run_app` prints a `ConfigError` as
    `error: ...` and exits 2, as click does.
    """
    where = exc.ctx.command_path if exc.ctx is not None else "sweepwise"
    message = exc.format_message()
    return ConfigError("", f"{message.removesuffix('.')} (see `{where} --help`)")


def _context(make: Any, *args: Any, **extra: Any) -> _click.Context:
    """`make(*args, **extra)` (a `make_context`), its usage error turned into one line."""
    try:
        context: _click.Context = make(*args, **extra)
    except _exceptions.NoArgsIsHelpError:
        raise  # shows the help, as asked
    except _exceptions.UsageError as exc:
        raise _one_line(exc) from None
    return context


class PlainCommand(TyperCommand):
    """A command whose help shows a value placeholder only where a value is taken."""

    def get_params(self, ctx: _click.Context) -> list[Any]:
        """The command's parameters, help option included, in their plain-help classes."""
        return _plain(super().get_params(ctx))

    def make_context(
        self, info_name: str | None, args: list[str], parent: _click.Context | None = None, **extra: Any
    ) -> _click.Context:
        """The command's context; a usage error is one line (`_one_line`)."""
        return _context(super().make_context, info_name, args, parent, **extra)


class PlainGroup(TyperGroup):
    """The top-level group, with the same plain help as `PlainCommand`, closing with the plug-ins."""

    def get_params(self, ctx: _click.Context) -> list[Any]:
        """The group's parameters, help option included, in their plain-help classes."""
        return _plain(super().get_params(ctx))

    def make_context(
        self, info_name: str | None, args: list[str], parent: _click.Context | None = None, **extra: Any
    ) -> _click.Context:
        """The group's context; a usage error is one line (`_one_line`)."""
        return _context(super().make_context, info_name, args, parent, **extra)

    def resolve_command(self, ctx: _click.Context, args: list[str]) -> Any:
        """The command `args` names; an unknown one is one line (`_one_line`), with typer's suggestion."""
        try:
            return super().resolve_command(ctx, args)
        except _exceptions.UsageError as exc:
            raise _one_line(exc) from None

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The help screen, ending with the registered dispatchers, schedulers, optimizers and stores."""
        self.epilog = plugins_text()
        super().format_help(ctx, formatter)


def plugins_text() -> str:
    """One paragraph per registry: the names a spec may use (built-in, registered and entry points)."""
    from sweepwise.dispatchers import available_dispatchers
    from sweepwise.optimizers import available_optimizers
    from sweepwise.schedulers import available_schedulers
    from sweepwise.stores.location import available_stores

    listed = (
        ("Dispatchers", available_dispatchers()),
        ("Schedulers", available_schedulers()),
        ("Optimizers", available_optimizers()),
        ("Stores (URL schemes)", available_stores()),
    )
    lines = [f"{label}: {', '.join(names)}." for label, names in listed]
    return "\n\n".join(
        [*lines, "More come from `imports:` in a spec or installed plug-ins (docs/backends.md)."]
    )


__all__ = ["PlainCommand", "PlainGroup", "plugins_text"]
