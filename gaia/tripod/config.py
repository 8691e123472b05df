"""Process configs as JSON files (what `gaia tripod up` writes for each controller and
agent it starts): a dataclass saved with its field names, loaded back with tuples."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound="JsonConfig")


def tuples(value: Any) -> Any:
    """JSON gives lists; the configs hold tuples (hashable, compared by value)."""
    return tuple(tuples(v) for v in value) if isinstance(value, list) else value


class JsonConfig:
    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))  # type: ignore[call-overload]
        return path

    @classmethod
    def load(cls: type[T], path: Path) -> T:
        data = json.loads(Path(path).read_text())
        return cls(**{key: tuples(value) for key, value in data.items()})
