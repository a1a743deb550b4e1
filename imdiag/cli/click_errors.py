"""The click exceptions typer raises for usage errors, wherever this typer version keeps click.

typer >= 0.2x vendors click as ``typer._click``; older versions depend on click itself.
"""

from __future__ import annotations

try:
    from typer._click.exceptions import (
        BadParameter,
        MissingParameter,
        NoArgsIsHelpError,
        NoSuchOption,
        UsageError,
    )
except ImportError:  # pragma: no cover - typer with click as a dependency
    from click.exceptions import (  # type: ignore[import-not-found,no-redef,assignment]
        BadParameter,
        MissingParameter,
        NoArgsIsHelpError,
        NoSuchOption,
        UsageError,
    )

__all__ = ["BadParameter", "MissingParameter", "NoArgsIsHelpError", "NoSuchOption", "UsageError"]
