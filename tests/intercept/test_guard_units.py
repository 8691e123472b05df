"""The guard's parts without servers: policy, request framing and sessions, the checkpoint
store and its transfer, and truncation of the shared-memory log."""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.errors import ConfigError
from gaia.intercept import ring_layout as L
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from gaia.intercept.checkpoint_transfer import (
    CheckpointServer,
    fetch_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from gaia.intercept.events import Event, encode_batch
from gaia.intercept.feed import LogFeed
from gaia.intercept.guard_log import LogTruncated, ShmTruncatableLog
from gaia.intercept.guard_policy import (
    GuardPolicy,
    checkpoint_due,
    retention,
    truncation_point,
)
from gaia.intercept.guard_session import (
    FRAMINGS,
    Session,
    extend_pending,
    extend_prefix,
    session_of,
)
from gaia.intercept.shm import shm_path
from gaia.intercept.shmlog import ShmLog

# -- policy ---------------------------------------------------------------------------------


@given(st.integers(0, 50), st.floats(0, 50), st.integers(0, 10_000), st.integers(0, 10_000),
       st.floats(0, 1000), st.floats(0, 1000))
def test_a_checkpoint_is_due_only_with_new_entries_and_a_trigger(entries, seconds, last,
                                                                 commit, last_t, now):
    policy = GuardPolicy(every_entries=entries, every_seconds=seconds)
    due = checkpoint_due(policy, last, last_t, commit, now)
    new = commit - last
    by_entries = bool(entries) and new >= entries
    by_time = bool(seconds) and now - last_t >= seconds
    assert due == (new > 0 and (by_entries or by_time))


@given(st.lists(st.integers(1, 10**6), max_size=20), st.integers(1, 5))
def test_retention_keeps_the_newest(indices, keep):
    kept, dropped = retention(indices, keep)
    assert len(kept) == min(keep, len(set(indices)))
    assert set(kept) | set(dropped) == set(indices)
    assert not dropped or max(dropped) < min(kept)


@given(st.lists(st.integers(0, 10**6), max_size=5), st.lists(st.integers(0, 10**6), max_size=5))
def test_truncation_keeps_every_retained_checkpoint_and_reader_usable(retained, readers):
    point = truncation_point(retained, readers)
    if not retained:
        assert point == 0
        return
    assert point <= min(retained) + 1  # every retained checkpoint's suffix stays
    assert all(point <= r + 1 for r in readers)  # no live reader loses an entry it needs
    assert point in {min(retained) + 1, *(r + 1 for r in readers)}  # as far as allowed


def test_policy_rejects_keeping_nothing():
    with pytest.raises(ConfigError, match="at least one"):
        GuardPolicy(keep=0)


# -- framing and sessions ----------------------------------------------------------------------
def _mysql(body: bytes, seq: int = 0) -> bytes:
    return len(body).to_bytes(3, "little") + bytes([seq]) + body


def _mongo(body: bytes) -> bytes:
    return struct.pack("<iiii", 16 + len(body), 7, 0, 2013) + body


def _resp(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _memcached(kind: int, key: bytes, data: bytes) -> bytes:
    if kind == 0:
        return b"set %s 0 0 %d\r\n%s\r\n" % (key, len(data), data)
    if kind == 1:
        return b"ms %s %d T0\r\n%s\r\n" % (key, len(data), data)
    if kind == 2:
        return b"get %s\r\n" % key
    return struct.pack(">BBHBBHIIQ", 0x80, 1, len(key), 0, 0, 0, len(key) + len(data), 0, 0) \
        + key + data


_blob = st.binary(max_size=300)
_key = st.binary(min_size=1, max_size=8).map(lambda b: b.hex().encode())
MESSAGES = {
    "mariadb": st.lists(_blob.map(_mysql), min_size=1, max_size=8),
    "mongodb": st.lists(_blob.map(_mongo), min_size=1, max_size=8),
    "redis": st.lists(st.one_of(
        st.lists(_blob, min_size=1, max_size=4).map(_resp),
        st.text("abcdefgh 0123", min_size=1, max_size=20).map(lambda t: t.encode() + b"\r\n"),
    ), min_size=1, max_size=8),
    "memcached": st.lists(st.builds(_memcached, st.integers(0, 3), _key, _blob),
                          min_size=1, max_size=8),
}


@pytest.mark.parametrize("app", sorted(MESSAGES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_framing_finds_the_last_complete_request_at_any_cut(app, data):
    messages = data.draw(MESSAGES[app])
    stream = b"".join(messages)
    ends = [sum(map(len, messages[: i + 1])) for i in range(len(messages))]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pending, sent = b"", 0
    for cut in [*cuts, len(stream)]:
        pending = extend_pending(FRAMINGS[app].complete, pending, stream[sent:cut])
        sent = cut
        boundary = max([0, *(e for e in ends if e <= cut)])
        assert pending == stream[boundary:cut]


@settings(max_examples=100, deadline=None)
@given(st.lists(_blob, min_size=1, max_size=6), st.data())
def test_a_reopened_mysql_session_sees_the_login_then_the_unexecuted_requests(bodies, data):
    """Whatever the checkpoint position c: the re-opened connection gets its replay, then
    the rest of the stream; the server must see the login and then exactly the requests
    it had not executed when the checkpoint was taken."""
    login = _mysql(b"login-" + bodies[0], 1)
    requests = [_mysql(b, 0) for b in bodies[1:]]
    stream = login + b"".join(requests)
    cut = data.draw(st.integers(0, len(stream)))
    rule = FRAMINGS["mariadb"]
    prefix = extend_prefix(rule.login, b"", stream[:cut])
    pending = extend_pending(rule.complete, b"", stream[:cut])
    session = Session.from_json(session_of(9, prefix, pending, cut).to_json())
    seen = session.replay + stream[cut:]
    executed = [e for e in [len(login)] + [len(login) + sum(map(len, requests[: i + 1]))
                                           for i in range(len(requests))] if e <= cut]
    if not executed:  # the checkpoint fell inside the login
        assert seen == stream
    else:
        assert seen == login + stream[executed[-1]:]


# -- the checkpoint store ---------------------------------------------------------------------
def _commit(store: CheckpointStore, index: int, payload: bytes) -> Checkpoint:
    staging = store.staging(index)
    (staging / "snap.bin").write_bytes(payload)
    return store.commit(staging, Checkpoint(index=index, app="redis", snapshot="snap.bin",
                                            sessions=(Session(5, b"p", b"x", 0),)))


def test_store_lists_checkpoints_atomically_and_prunes_to_keep(tmp_path):
    store = CheckpointStore(tmp_path)
    for index in (10, 20, 30):
        _commit(store, index, b"state %d" % index)
    (tmp_path / ".staging-000000000040-dead").mkdir()  # a crash while writing one
    reopened = CheckpointStore(tmp_path)
    assert [c.index for c in reopened.records()] == [10, 20, 30]
    assert not list(tmp_path.glob(".staging-*"))
    assert reopened.newest().sessions == (Session(5, b"p", b"x", 0),)
    dropped = reopened.prune(2)
    assert [c.index for c in dropped] == [10]
    assert not (tmp_path / dropped[0].dirname).exists()
    assert [c.index for c in reopened.records()] == [20, 30]
    assert not list(tmp_path.glob(".*.tmp")), "the manifest's temp file was left behind"


def test_store_detects_corrupt_truncated_and_missing_snapshots(tmp_path):
    store = CheckpointStore(tmp_path)
    first, second, third = (_commit(store, i, os.urandom(4096)) for i in (1, 2, 3))
    path = store.snapshot_path(third)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    store.snapshot_path(second).write_bytes(b"short")
    good, problems = store.usable()
    assert [c.index for c in good] == [1]
    assert "checkpoint 3: checksum" in problems[0]
    assert "checkpoint 2: 5 bytes on disk, 4096 recorded" in problems[1]
    store.snapshot_path(first).unlink()
    good, problems = store.usable()
    assert good == [] and "checkpoint 1: snapshot" in problems[2] and "missing" in problems[2]


def test_store_skips_checkpoints_whose_suffix_was_truncated(tmp_path):
    store = CheckpointStore(tmp_path)
    for index in (5, 9):
        _commit(store, index, b"x")
    good, problems = store.usable(min_index=8)
    assert [c.index for c in good] == [9]
    assert "checkpoint 5: older than the log's start" in problems[0]


def test_an_unreadable_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        CheckpointStore(tmp_path).records()


def test_transfer_copies_the_newest_usable_checkpoint_between_guards(tmp_path):
    source = CheckpointStore(tmp_path / "a")
    _commit(source, 7, os.urandom(10_000))
    newest = _commit(source, 8, os.urandom(200_000))
    target = CheckpointStore(tmp_path / "b")
    with CheckpointServer(source) as server:
        got = fetch_checkpoint(server.address, target)
        assert (got.index, got.checksum, got.size) == (8, newest.checksum, newest.size)
        assert target.problem(got) is None
        assert target.snapshot_path(got).read_bytes() == source.snapshot_path(newest).read_bytes()
        source.snapshot_path(newest).write_bytes(b"damaged")
        assert fetch_checkpoint(server.address, target, "newest").index == 7
        with pytest.raises(CheckpointError, match="no usable checkpoint 8"):
            fetch_checkpoint(server.address, target, "8")
    with pytest.raises(CheckpointError, match="cannot reach the checkpoint server"):
        fetch_checkpoint(server.address, target)


def test_atleast_asks_for_a_recent_checkpoint_and_the_server_may_take_one(tmp_path):
    """A replica restarting after its group compacted the log needs a checkpoint at least
    as recent as its log's start: the peer answers with its newest if that is recent
    enough, else takes one now (when it can), else says why not."""
    source = CheckpointStore(tmp_path / "a")
    _commit(source, 7, os.urandom(1000))
    target = CheckpointStore(tmp_path / "b")
    with CheckpointServer(source) as server:
        assert fetch_checkpoint(server.address, target, "atleast 5").index == 7
        with pytest.raises(CheckpointError, match="no usable checkpoint"):
            fetch_checkpoint(server.address, target, "atleast 9")
    taken = []

    def take():
        taken.append(_commit(source, 12, os.urandom(1000)))
        return taken[-1]

    with CheckpointServer(source, take=take) as server:
        assert fetch_checkpoint(server.address, target, "atleast 7").index == 7 and not taken
        assert fetch_checkpoint(server.address, target, "atleast 9").index == 12
        assert len(taken) == 1

    def cannot():
        raise CheckpointError("replica r1 is serving, not a backup", "ask another")

    with CheckpointServer(source, take=cannot) as server, \
            pytest.raises(CheckpointError, match="serving, not a backup"):
        fetch_checkpoint(server.address, target, "atleast 20")


def test_a_checkpoint_travels_as_bytes_and_a_cut_stream_is_refused(tmp_path):
    """The byte format APUS's snapshot transfer can carry (no socket)."""
    source, target = CheckpointStore(tmp_path / "a"), CheckpointStore(tmp_path / "b")
    sent = _commit(source, 12, os.urandom(50_000))
    buf = io.BytesIO()
    write_checkpoint(source, sent, buf)
    got = read_checkpoint(target, io.BytesIO(buf.getvalue()))
    assert got == sent and target.problem(got) is None
    with pytest.raises(CheckpointError, match="broke off"):
        read_checkpoint(CheckpointStore(tmp_path / "c"), io.BytesIO(buf.getvalue()[:30_000]))
    assert not list((tmp_path / "c").glob(".staging-*"))


def test_a_checkpoint_that_arrives_damaged_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    staging = store.staging(3)
    (staging / "snap.bin").write_bytes(b"abc")
    record = Checkpoint(index=3, app="redis", snapshot="snap.bin", size=3, checksum="0" * 32)
    with pytest.raises(CheckpointError, match="arrived damaged"):
        store.commit(staging, record)
    assert store.records() == [] and not staging.exists()


# -- truncating the shared-memory log ---------------------------------------------------------
def _fill(log: ShmLog, count: int, size: int) -> list[bytes]:
    payloads = [encode_batch([Event(L.EV_RAW, 0, bytes([i % 251]) * size)])
                for i in range(count)]
    for p in payloads:
        log.append(p)
    return payloads


def test_truncation_drops_entries_frees_their_pages_and_is_seen_by_every_mapping(shm):
    log = shm.log(capacity=1024, data_size=16 << 20)
    payloads = _fill(log, 200, 20_000)
    tlog = ShmTruncatableLog(log)
    blocks = os.stat(shm_path(log.name)).st_blocks
    assert tlog.first_index() == 1
    assert tlog.truncate_before(151) == 151
    assert tlog.truncate_before(40) == 151, "truncation never moves backwards"
    with pytest.raises(LogTruncated, match=r"log entry 150 was truncated.*starts at entry 151"):
        tlog.entry(150)
    assert bytes(tlog.entry(151)) == payloads[150]
    freed = blocks - os.stat(shm_path(log.name)).st_blocks
    assert freed * 512 > 140 * 20_000, "the dropped entries' pages were not given back"
    other = ShmTruncatableLog(ShmLog.open(log.name))
    assert other.first_index() == 151
    assert other.truncate_before(10_000) == 201  # clamped: everything committed
    with pytest.raises(LogTruncated):
        list(LogFeed(tlog).events(100, stop=lambda: True))
    other.log.close()
