"""The region layout: per-sender blocks that never overlap, and a header naming the group."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gaia.apus.layout import LayoutConfig, init_region, new_group_id
from gaia.errors import ConfigError, GaiaError


def _spans(cfg: LayoutConfig, sender: int) -> list[tuple[int, int]]:
    spans = [(cfg.hb(sender), 64), (cfg.ack(sender), 64), (cfg.reply(sender), cfg.reply_slot_size),
             (cfg.doorbell(sender), 64)]
    spans += [(cfg.ring_slot(sender, i), cfg.slot_size) for i in range(cfg.ring_slots)]
    spans += [(cfg.mail_slot(sender, k), cfg.mail_slot_size) for k in range(cfg.mail_slots)]
    return spans


def test_every_slot_of_every_sender_is_disjoint_and_inside_the_region():
    cfg = LayoutConfig(max_members=3, ring_slots=4, max_payload=100, mail_slots=2,
                       mail_slot_size=1024)
    spans = sorted(s for sender in range(3) for s in _spans(cfg, sender))
    for (a, la), (b, _) in itertools.pairwise(spans):
        assert a + la <= b
    assert spans[-1][0] + spans[-1][1] <= cfg.region_size
    assert all(off % 8 == 0 for off, _ in spans)
    lay = cfg.array()
    assert lay.dtype == np.int64 and int(lay[15]) == cfg.region_size


def test_a_region_of_another_group_is_refused_and_a_zeroed_one_is_stamped():
    cfg = LayoutConfig(max_members=2, ring_slots=2, max_payload=64, mail_slot_size=1024)
    region = np.zeros(cfg.region_size, dtype=np.uint8)
    group = new_group_id()
    init_region(region, cfg, group, 0)
    init_region(region, cfg, group, 0)  # same group again: fine (restart without reset)
    with pytest.raises(GaiaError, match="another APUS group"):
        init_region(region, cfg, new_group_id(), 0)
    with pytest.raises(GaiaError, match="another layout"):
        init_region(region, LayoutConfig(max_members=2, ring_slots=4, max_payload=64,
                                         mail_slot_size=1024), group, 0)


def test_nonsense_sizes_are_config_errors():
    with pytest.raises(ConfigError):
        LayoutConfig(max_members=0)
    with pytest.raises(ConfigError):
        LayoutConfig(mail_slot_size=1000)
