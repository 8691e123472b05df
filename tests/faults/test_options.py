"""What a campaign refuses before starting anything, and how its seeds are derived."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaia.cluster.nemesis import NetworkFaultUnsupportedError
from gaia.errors import ConfigError
from gaia.faults.campaign import run_campaign
from gaia.faults.cli import main
from gaia.faults.options import CampaignOptions, parse_kinds
from gaia.faults.vm_system import VmSystem


@pytest.mark.parametrize("kind", ["partition", "loss", "one-way", "rate", "delay"])
def test_shm_refuses_network_faults_with_the_reason(kind):
    with pytest.raises(NetworkFaultUnsupportedError, match="no packets cross a network"):
        CampaignOptions(nemesis=("kill", kind), transport="shm").validate()


def test_tcp_takes_network_faults():
    CampaignOptions(nemesis=("partition", "loss", "kill"), transport="tcp").validate()


@pytest.mark.parametrize(("change", "message"), [
    ({"app": "postgres"}, "unknown app"),
    ({"nemesis": ("explode",)}, "unknown nemesis"),
    ({"transport": "rdma"}, "unknown transport"),
    ({"runs": 0}, "--runs"),
    ({"replicas": 12}, "--replicas"),
    ({"durability": "paper"}, "durability"),
    ({"run_s": 1.0}, "may hold no fault"),
    ({"read_share": 0.9, "cas_share": 0.3}, "more than 1"),
])
def test_bad_options_are_one_clear_error(change, message):
    with pytest.raises(ConfigError, match=message):
        CampaignOptions(**change).validate()


def test_an_infrastructure_refuses_kinds_it_cannot_inject():
    with pytest.raises(ConfigError, match="--infra vm cannot inject pause"):
        CampaignOptions(infra="vm", nemesis=("kill", "pause")).validate(VmSystem.kinds)


def test_tripod_needs_tcp_and_is_refused_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("GAIA_RUN_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match="talk over tcp") as refused:
        run_campaign(CampaignOptions(infra="tripod", nemesis=("kill",)))
    assert refused.value.fix == "pass --transport tcp"
    assert not list(tmp_path.iterdir()), "nothing was created"


def test_unknown_infrastructure():
    with pytest.raises(ConfigError, match="unknown infrastructure"):
        run_campaign(CampaignOptions(infra="mainframe"))


def test_the_command_line_prints_one_line_and_fails(capsys):
    assert main(["--nemesis", "partition", "--transport", "shm"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: network fault `partition` cannot act here") and "fix:" in err
    assert "Traceback" not in err


def test_nemesis_kinds_are_parsed():
    assert parse_kinds("kill, pause,one_way") == ("kill", "pause", "one-way")
    with pytest.raises(ConfigError):
        parse_kinds(" , ")


@given(st.integers(0, 10**9), st.integers(0, 10**6))
def test_a_run_seed_depends_on_campaign_seed_and_index_only(seed, index):
    a = CampaignOptions(seed=seed, runs=1, first=index)
    b = CampaignOptions(seed=seed, runs=500)
    assert a.run_seed(index) == b.run_seed(index)
    assert a.run_seed(index) != a.run_seed(index + 1)
