"""The CI regression gate's own check: the gate file, then the size sweep and the fixture replays it asks for.

The judging is pure (``imdiag.core.gate``); this runs the measurements and returns reports.
"""

from __future__ import annotations

import dataclasses
import os
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imdiag.core.errors import InputError
from imdiag.core.gate import GateConfig, parse_gate_config
from imdiag.core.model import Cell, MasterInfo, Report
from imdiag.core.plan import ReplaySettings
from imdiag.runners.replay import run_replay
from imdiag.runners.sweep import run_sweep

# --- the gate file ----------------------------------------------------------------------------

GATE_FILE = "imdiag.toml"
PYPROJECT = "pyproject.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise InputError(f"cannot read gate file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # TOML is UTF-8: tomllib decodes the bytes before parsing them
        raise InputError(f"{path}: not UTF-8 text (TOML is UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None


def load_gate_config(config: str | None, *, timeout_scale: float = 1.0) -> GateConfig:
    """``--config FILE``, else ./imdiag.toml, else ``[tool.imdiag]`` in ./pyproject.toml."""
    if config is not None:
        path = Path(config)
        data = _read_toml(path)
        if path.name == PYPROJECT:
            table = data.get("tool", {}).get("imdiag")
            if not isinstance(table, dict):
                raise InputError(f"{path}: no [tool.imdiag] table")
            return parse_gate_config(table, f"{path} [tool.imdiag]", str(path.parent), timeout_scale=timeout_scale)
        return parse_gate_config(data, str(path), str(path.parent), timeout_scale=timeout_scale)
    if Path(GATE_FILE).is_file():
        return load_gate_config(GATE_FILE, timeout_scale=timeout_scale)
    if Path(GATE_FILE).is_dir():  # there, but not a file: "does not exist" would mislead
        raise InputError(f"cannot read gate file ./{GATE_FILE}: it is a directory (or pass --config FILE)")
    if Path(PYPROJECT).is_file():
        table = _read_toml(Path(PYPROJECT)).get("tool", {}).get("imdiag")
        if isinstance(table, dict):
            return parse_gate_config(table, f"{PYPROJECT} [tool.imdiag]", ".", timeout_scale=timeout_scale)
    raise InputError(f"no gate file: ./{GATE_FILE} does not exist and ./{PYPROJECT} has no [tool.imdiag] "
                     "table (or pass --config FILE)")


# --- running the team's check -----------------------------------------------------------------


def replay_label(fixture: str) -> str:
    """Replayed cells are labelled ``replay:<file>``: two captures both have a message #0."""
    return f"replay:{os.path.basename(fixture)}"


async def replay_fixtures(config: GateConfig, cells: list[Cell],
                          on_started: Callable[[Sequence[MasterInfo]], None] | None = None) -> list[Report]:
    """Replay the gate file's fixtures at its limits, transports, encoder and masters.

    The one place the gate reaches the replay engine. Timing is ``fast`` (each message alone):
    ``original`` timing lets polling batch messages depending on the machine's speed, and a
    gate must give the same verdicts on every run. Cells are appended to ``cells`` (labelled
    ``replay:<file>``) as each capture finishes, so an interrupted gate still holds them.
    """
    reports = []
    for fixture in config.fixtures:
        settings = ReplaySettings(
            path=fixture, limits=config.limits, transports=config.transports, encoder=config.encoder,
            masters=config.masters, namespace=config.namespace, event=config.event, timing="fast",
            timeout_s=config.timeout_s,
        )
        replayed: list[Cell] = []
        try:
            reports.append(await run_replay(settings, replayed, on_started=on_started))
        finally:
            label = replay_label(fixture)
            cells.extend(dataclasses.replace(c, label=label) for c in replayed)
    return reports


async def run_gate_check(config: GateConfig, cells: list[Cell],
                         on_started: Callable[[Sequence[MasterInfo]], None] | None = None) -> tuple[Report, list[Report]]:
    """The size sweep and the fixture replays the gate file asks for: one report to judge, and
    the sweep's and each replay's own report, for the terminal. ``on_started`` names each part's
    masters once they are up (an interrupted gate reports them)."""
    started = time.monotonic()
    parts: list[Report] = []
    if config.sweep is not None:
        parts.append(await run_sweep(config.sweep, cells, on_started=on_started))
    if config.fixtures:
        parts += await replay_fixtures(config, cells, on_started)
    report = Report(
        command="gate",
        settings=gate_settings(config),
        cells=list(cells),
        masters=[run for part in parts for run in part.masters],
        elapsed_s=round(time.monotonic() - started, 3),
    )
    return report, parts


def gate_settings(config: GateConfig) -> dict[str, Any]:
    return {
        "config": config.source,
        "sweep": config.sweep.to_dict() if config.sweep is not None else None,
        "fixtures": list(config.fixtures),
        "limits": list(config.limits),
        "transports": [t.value for t in config.transports],
        "encoder": config.encoder.value,
        "masters": list(config.masters),
        "expect": [r.text for r in config.spec.rules],
        "max_fill": config.spec.max_fill,
        "max_growth": config.spec.max_growth,
        "baseline": config.baseline,
    }
