"""Placeholders in a task's command, replaced per replica: {port} (the app port),
{apus_port}, {dir} (a fresh directory for the replica), {address} (the agent's address),
{task_id}, {index}. Other braces are left alone (shell code keeps working)."""

from __future__ import annotations

import re
from collections.abc import Sequence

PLACEHOLDER = re.compile(r"\{(port|apus_port|dir|address|task_id|index)\}")


def expand(command: Sequence[str], values: dict[str, str]) -> list[str]:
    return [PLACEHOLDER.sub(lambda m: values[m.group(1)], part) for part in command]
