"""ring_layout.py mirrors gaia_ring.h: compile the header and compare every value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gaia.intercept import ring_layout as L
from gaia.intercept.build import SOURCE_DIR, compiler


def _program() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "gaia_ring.h"',
             "int main(void) {"]
    for name in L.C_DEFINES:
        lines.append(f'  printf("define {name} %llu\\n", (unsigned long long)({name}));')
    for (struct, field) in L.C_OFFSETS:
        lines.append(f'  printf("offset {struct}.{field} %zu\\n", '
                     f"offsetof(struct {struct}, {field}));")
    for struct in L.C_SIZES:
        lines.append(f'  printf("size {struct} %zu\\n", sizeof(struct {struct}));')
    lines += ["  return 0;", "}"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_values(tmp_path_factory) -> dict[str, int]:
    work: Path = tmp_path_factory.mktemp("layout")
    (work / "layout.c").write_text(_program())
    subprocess.run([compiler(), "-Wall", "-Werror", "-I", str(SOURCE_DIR), "-o",
                    str(work / "layout"), str(work / "layout.c")], check=True)
    out = subprocess.run([str(work / "layout")], check=True, capture_output=True, text=True)
    values = {}
    for line in out.stdout.splitlines():
        kind, name, value = line.split()
        values[f"{kind} {name}"] = int(value)
    return values


def test_every_define_matches(c_values):
    mismatched = {n: (v, c_values[f"define {n}"]) for n, v in L.C_DEFINES.items()
                  if c_values[f"define {n}"] != v}
    assert not mismatched, f"python value, C value: {mismatched}"


def test_every_offset_and_size_matches(c_values):
    mismatched = {f"{s}.{f}": (v, c_values[f"offset {s}.{f}"])
                  for (s, f), v in L.C_OFFSETS.items() if c_values[f"offset {s}.{f}"] != v}
    mismatched |= {s: (v, c_values[f"size {s}"]) for s, v in L.C_SIZES.items()
                   if c_values[f"size {s}"] != v}
    assert not mismatched, f"python value, C value: {mismatched}"


def test_every_define_in_the_header_is_mirrored():
    header = (SOURCE_DIR / "gaia_ring.h").read_text()
    names = {line.split()[1] for line in header.splitlines()
             if line.startswith("#define ") and line.split()[1] != "GAIA_RING_H"}
    assert names == set(L.C_DEFINES), names ^ set(L.C_DEFINES)


def test_every_struct_field_in_the_header_is_mirrored():
    import re

    header = (SOURCE_DIR / "gaia_ring.h").read_text()
    fields = set()
    for struct, body in re.findall(r"struct (\w+) \{(.*?)\n\};", header, re.S):
        for name in re.findall(r"^\s*u?int\d+_t (\w+)", body, re.M):
            if not name.startswith("_pad"):
                fields.add((struct, name))
    assert fields == set(L.C_OFFSETS), fields ^ set(L.C_OFFSETS)
