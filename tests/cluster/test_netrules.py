"""Fault command lines (pure: no root needed)."""

from __future__ import annotations

import pytest

from gaia.cluster import netrules


def test_drop_rules_name_the_sources_and_echo_a_handle():
    argv = netrules.drop_from(["10.1.1.2", "10.1.1.1", "10.1.1.2"])
    assert argv[:3] == ["nft", "--echo", "--handle"]
    assert "add table inet gaia_nemesis;" in argv[3]  # idempotent: one call per rule
    assert argv[3].endswith("input ip saddr { 10.1.1.1, 10.1.1.2 } drop")
    assert netrules.drop_random(25)[3].endswith('iifname != "lo" numgen random mod 100 < 25 drop')
    assert "ip saddr { 10.0.0.9 }" in netrules.drop_random(5, ["10.0.0.9"])[3]
    assert (
        netrules.parse_handle(
            "add rule inet gaia_nemesis input ip saddr 10.0.0.1 drop # handle 12\n"
        )
        == 12
    )
    with pytest.raises(ValueError, match="no rule handle"):
        netrules.parse_handle("")
    with pytest.raises(ValueError, match="at least one"):
        netrules.drop_from([])


def test_tbf_bucket_scales_with_rate():
    slow = netrules.tbf("eth0", 256)
    fast = netrules.tbf("eth0", 100_000)
    assert slow[slow.index("rate") + 1] == "256kbit"
    assert int(slow[slow.index("burst") + 1]) == 3000
    assert int(fast[fast.index("burst") + 1]) == 100_000 * 1000 // 8 // 50
    with pytest.raises(ValueError):
        netrules.tbf("eth0", 0)
