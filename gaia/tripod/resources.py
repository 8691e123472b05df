"""Resources as exact integers (millicpus, MiB), so the allocation arithmetic never rounds.

Dividing an offer by max R with floats would let R copies of an offer exceed what exists
by a rounding error; integers with floor division make "offer × max R <= available" exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gaia.errors import ConfigError


@dataclass(frozen=True)
class Resources:
    cpus_m: int = 0  # thousandths of a CPU
    mem_mb: int = 0

    @classmethod
    def of(cls, cpus: float, mem_mb: int) -> Resources:
        """From a CPU count as users write it (0.5) and MiB."""
        if cpus < 0 or mem_mb < 0:
            raise ConfigError(
                f"resources cannot be negative (cpus={cpus}, mem={mem_mb} MiB)",
                "pass cpus >= 0 and mem >= 0",
            )
        return cls(round(cpus * 1000), int(mem_mb))

    @property
    def cpus(self) -> float:
        return self.cpus_m / 1000

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus_m + other.cpus_m, self.mem_mb + other.mem_mb)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus_m - other.cpus_m, self.mem_mb - other.mem_mb)

    def times(self, k: int) -> Resources:
        return Resources(self.cpus_m * k, self.mem_mb * k)

    def divided(self, k: int) -> Resources:
        """Floor division: k copies of the result always fit in self."""
        return Resources(self.cpus_m // k, self.mem_mb // k)

    def fits_in(self, other: Resources) -> bool:
        return self.cpus_m <= other.cpus_m and self.mem_mb <= other.mem_mb

    def clamp(self) -> Resources:
        """Negative components become 0 (an agent over-committed by a stale decision)."""
        return Resources(max(0, self.cpus_m), max(0, self.mem_mb))

    def is_empty(self) -> bool:
        return self.cpus_m <= 0 or self.mem_mb <= 0

    def to_json(self) -> dict[str, int]:
        return {"cpus_m": self.cpus_m, "mem_mb": self.mem_mb}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resources:
        return cls(int(data["cpus_m"]), int(data["mem_mb"]))

    def __str__(self) -> str:
        return f"cpus={self.cpus:g},mem={self.mem_mb}MiB"


def total(items: list[Resources] | tuple[Resources, ...]) -> Resources:
    out = Resources()
    for item in items:
        out = out + item
    return out
