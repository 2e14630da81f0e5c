"""Settings from ``[tool.graphopt.check]`` in the nearest pyproject.toml; command-line flags win.

[tool.graphopt.check]
max-slowdown = "3%"
confidence = 0.95
time-budget = 90
on-inconclusive = "fail"
tolerance-profile = "default"
"""

from __future__ import annotations

from pathlib import Path

import tomllib

from graphopt.core.errors import GraphoptError

KEYS = {
    "target",
    "max-slowdown",
    "confidence",
    "inputs",
    "tolerance-profile",
    "rtol",
    "atol",
    "time-budget",
    "on-inconclusive",
    "format",
}


def find_pyproject(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def check_settings(start: Path | None = None) -> dict:
    path = find_pyproject((start or Path.cwd()).resolve())
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GraphoptError(f"{path}: not valid TOML ({error})") from None
    section = data.get("tool", {}).get("graphopt", {}).get("check", {})
    unknown = set(section) - KEYS
    if unknown:
        raise GraphoptError(f"{path}: unknown key(s) in [tool.graphopt.check]: {', '.join(sorted(unknown))}")
    return section


def parse_fraction(value: str | float) -> float:
    """``"2%"``, ``"0.02"`` or ``0.02`` -> 0.02."""
    text = str(value).strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise GraphoptError(f"expected a fraction like 2% or 0.02, got {value!r}") from None
