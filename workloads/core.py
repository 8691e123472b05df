"""YCSB's CoreWorkload: which operation, on which key, with which fields and values.

One `CoreWorkload` per client (thread or process). Every decision for one operation is
made by a single numba call (`plan_operation`): the operation (DiscreteGenerator over the
proportions, normalised as Java does), the key number (nextKeynum), the key name
(buildKeyName), the read/write field (a uniform field chooser), the scan length and the
values. Python then issues the database calls, as CoreWorkload.doInsert/doTransaction do.

Faithful details (site.ycsb.workloads.CoreWorkload):
  * load: keys come from a counter starting at insertstart shared by all clients; every
    field gets a value (buildValues);
  * run: inserts take keys from the acknowledged counter (starting at recordcount) and
    acknowledge them when the insert returns, whatever its status (Java's `finally`);
  * nextKeynum: redraw until the key is <= the acknowledged limit; with the exponential
    distribution the key is `limit - (int) draw`, redrawn while negative; Java narrows the
    chooser's long with intValue(), reproduced (a no-op below 2^31 records);
  * the zipfian key chooser is a scrambled zipfian over insertcount plus twice the
    expected inserts (`(int)(operationcount * insertproportion * 2.0)`), as Java sizes it
    so that the popular keys do not move as the table grows;
  * updates write one random field (writeallfields=false) or all fields; reads read one
    random field (readallfields=false) or all (fields=None, or every name with
    readallfieldsbyname/dataintegrity); read-modify-write draws its read field and its
    write field independently, reads, then updates if the read was OK, and is measured as
    READ-MODIFY-WRITE from its (intended) start to the end of the update;
  * values: YCSB's RandomByteIterator: six printable bytes per random int, bytes i of
    each group are `((bits >> s_i) & m_i) + ' '` with (s, m) = (0,31) (5,63) (10,95)
    (15,31) (20,63) (25,95) -- so bytes lie in 32..127; with dataintegrity the
    deterministic `key:field:hash:hash...` value of buildDeterministicValue instead, and
    reads are verified (VERIFY measurement, as Java).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from workloads import generators as gen
from workloads import rng as _rng
from workloads.ackcounter import acknowledge, last_value, next_insert_key, next_load_key
from workloads.javamath import nb_key_digits, nb_write_key, string_hashcode
from workloads.measurements import ERROR, OK, UNEXPECTED_STATE, Measurements, Status
from workloads.properties import OPERATIONS, WorkloadConfig

READ, UPDATE, INSERT, SCAN, READMODIFYWRITE, LOAD = range(6)
OP_NAMES = (*OPERATIONS, "LOAD")

# header slots written by plan_operation
H_OP, H_KEYNUM, H_KEYLEN, H_READFIELD, H_WRITEFIELD, H_SCANLEN, H_NVALUES = range(7)
HEADER_SLOTS = 8
ALL_FIELDS = -1  # H_READFIELD: read every field; H_WRITEFIELD: every field gets a value
NO_VALUES = -2  # H_WRITEFIELD: the operation writes nothing

# integer settings passed to the kernel
C_ZEROPADDING, C_ORDERED, C_READALL, C_WRITEALL, C_FIELDCOUNT, C_EXPONENTIAL = range(6)
KEY_BUFFER = 1024 + 32


@njit(cache=True, nogil=True)
def fill_random_bytes(rng: np.ndarray, out: np.ndarray, start: np.int64, length: np.int64) -> None:
    """RandomByteIterator: 6 printable bytes per random int (see the module docstring)."""
    i = 0
    while i < length:
        bits = np.int64(_rng.next_int(rng))
        n = min(6, length - i)
        p = start + i
        out[p] = ((bits) & 31) + 32
        if n > 1:
            out[p + 1] = ((bits >> 5) & 63) + 32
        if n > 2:
            out[p + 2] = ((bits >> 10) & 95) + 32
        if n > 3:
            out[p + 3] = ((bits >> 15) & 31) + 32
        if n > 4:
            out[p + 4] = ((bits >> 20) & 63) + 32
        if n > 5:
            out[p + 5] = ((bits >> 25) & 95) + 32
        i += 6


@njit(cache=True, nogil=True)
def choose_operation(ops: np.ndarray, rng: np.ndarray) -> np.int64:
    """DiscreteGenerator.nextValue(): weights normalised by their sum, first match wins."""
    n = np.int64(ops[0])
    total = 0.0
    for i in range(n):
        total += ops[2 + 2 * i]
    val = _rng.next_double(rng)
    for i in range(n):
        pw = ops[2 + 2 * i] / total
        if val < pw:
            return np.int64(ops[1 + 2 * i])
        val -= pw
    return np.int64(ops[1 + 2 * (n - 1)])  # rounding left val >= 0: Java would assert


@njit(cache=True, nogil=True)
def next_keynum(cfg: np.ndarray, keyg: np.ndarray, rng: np.ndarray, shared: np.ndarray) -> np.int64:
    """CoreWorkload.nextKeynum()."""
    if cfg[C_EXPONENTIAL] != 0:
        while True:
            keynum = last_value(shared) - gen.java_int_value(gen.exp_next(keyg, rng))
            if keynum >= 0:
                return keynum
    while True:
        keynum = np.int64(np.int32(gen.gen_next(keyg, rng, shared)))  # Long.intValue()
        if keynum <= last_value(shared):
            return keynum


@njit(cache=True, nogil=True)
def _values(cfg, lengthg, fieldg, rng, shared, lens, vbuf, all_fields: bool) -> np.int64:
    """buildValues (all fields) or buildSingleValue; returns the written field (or ALL)."""
    if all_fields:
        pos = 0
        for f in range(cfg[C_FIELDCOUNT]):
            length = gen.gen_next(lengthg, rng, shared)
            lens[f] = length
            fill_random_bytes(rng, vbuf, pos, length)
            pos += length
        return ALL_FIELDS
    field = gen.gen_next(fieldg, rng, shared)
    length = gen.gen_next(lengthg, rng, shared)
    lens[0] = length
    fill_random_bytes(rng, vbuf, 0, length)
    return field


@njit(cache=True, nogil=True)
def plan_operation(
    load: bool, cfg, ops, keyg, fieldg, lengthg, scang, rng, shared, hdr, keybuf, lens, vbuf
) -> None:
    """Decide one operation completely; results go to hdr/keybuf/lens/vbuf."""
    readall = cfg[C_READALL] != 0
    writeall = cfg[C_WRITEALL] != 0
    hdr[H_READFIELD] = ALL_FIELDS
    hdr[H_WRITEFIELD] = NO_VALUES
    hdr[H_SCANLEN] = 0
    if load:
        op = LOAD
        keynum = next_load_key(shared)
    else:
        op = choose_operation(ops, rng)
        keynum = next_insert_key(shared) if op == INSERT else next_keynum(cfg, keyg, rng, shared)
    hdr[H_OP] = op
    hdr[H_KEYNUM] = keynum
    number = nb_key_digits(keynum, cfg[C_ORDERED] != 0)
    hdr[H_KEYLEN] = nb_write_key(number, cfg[C_ZEROPADDING], keybuf)
    if op in (LOAD, INSERT):
        hdr[H_WRITEFIELD] = _values(cfg, lengthg, fieldg, rng, shared, lens, vbuf, True)
    elif op == READ:
        if not readall:
            hdr[H_READFIELD] = gen.gen_next(fieldg, rng, shared)
    elif op == UPDATE:
        hdr[H_WRITEFIELD] = _values(cfg, lengthg, fieldg, rng, shared, lens, vbuf, writeall)
    elif op == SCAN:
        hdr[H_SCANLEN] = gen.gen_next(scang, rng, shared)
        if not readall:
            hdr[H_READFIELD] = gen.gen_next(fieldg, rng, shared)
    else:  # READMODIFYWRITE
        if not readall:
            hdr[H_READFIELD] = gen.gen_next(fieldg, rng, shared)
        hdr[H_WRITEFIELD] = _values(cfg, lengthg, fieldg, rng, shared, lens, vbuf, writeall)


@njit(cache=True, nogil=True)
def generate_keys(
    cfg, keyg, rng, shared, n: np.int64, out: np.ndarray, lengths: np.ndarray
) -> None:
    """n run-phase key choices (nextKeynum + buildKeyName) into rows of `out` (benchmark)."""
    for i in range(n):
        keynum = next_keynum(cfg, keyg, rng, shared)
        number = nb_key_digits(keynum, cfg[C_ORDERED] != 0)
        lengths[i] = nb_write_key(number, cfg[C_ZEROPADDING], out[i])


# -- building the generators from the configuration ---------------------------------------


def key_chooser(config: WorkloadConfig) -> np.ndarray:
    """CoreWorkload.init's keychooser for `requestdistribution`."""
    start, count = config.insertstart, config.insertcount
    dist = config.requestdistribution
    if dist == "uniform":
        return gen.uniform_state(start, start + count - 1)
    if dist == "exponential":
        return gen.exponential_state(
            config.exponential_percentile, config.recordcount * config.exponential_frac
        )
    if dist == "sequential":
        return gen.sequential_state(start, start + count - 1)
    if dist == "zipfian":
        expected_new = int(config.operationcount * config.proportions["INSERT"] * 2.0)
        return gen.scrambled_state(start, start + count + expected_new)
    if dist == "latest":
        return gen.latest_state(config.recordcount - 1)  # the acknowledged counter's start
    return gen.hotspot_state(
        start, start + count - 1, config.hotspotdatafraction, config.hotspotopnfraction
    )


def field_length_generator(config: WorkloadConfig) -> np.ndarray:
    """CoreWorkload.getFieldLengthGenerator."""
    if config.fieldlengthdistribution == "constant":
        return gen.constant_state(config.fieldlength)
    if config.fieldlengthdistribution == "uniform":
        return gen.uniform_state(config.minfieldlength, config.fieldlength)
    return gen.zipfian_state(config.minfieldlength, config.fieldlength)


def scan_length_generator(config: WorkloadConfig) -> np.ndarray:
    if config.scanlengthdistribution == "uniform":
        return gen.uniform_state(config.minscanlength, config.maxscanlength)
    return gen.zipfian_state(config.minscanlength, config.maxscanlength)


def operation_table(config: WorkloadConfig) -> np.ndarray:
    """createOperationGenerator: operations with a positive proportion, in Java's order."""
    chosen = [
        (i, config.proportions[name])
        for i, name in enumerate(OPERATIONS)
        if config.proportions[name] > 0
    ]
    table = np.zeros(1 + 2 * max(1, len(chosen)), dtype=np.float64)
    table[0] = len(chosen)
    for j, (code, weight) in enumerate(chosen):
        table[1 + 2 * j] = code
        table[2 + 2 * j] = weight
    return table


def kernel_settings(config: WorkloadConfig) -> np.ndarray:
    cfg = np.zeros(8, dtype=np.int64)
    cfg[C_ZEROPADDING] = config.zeropadding
    cfg[C_ORDERED] = int(config.orderedinserts)
    cfg[C_READALL] = int(config.readallfields)
    cfg[C_WRITEALL] = int(config.writeallfields)
    cfg[C_FIELDCOUNT] = config.fieldcount
    cfg[C_EXPONENTIAL] = int(config.requestdistribution == "exponential")
    return cfg


def max_field_length(config: WorkloadConfig) -> int:
    return max(config.fieldlength, config.minfieldlength, 1)


def deterministic_value(key: str, field: str, size: int) -> str:
    """CoreWorkload.buildDeterministicValue: key:field, then ':' + hashCode of the text
    so far, repeated until `size` characters, then cut to `size`."""
    text = f"{key}:{field}"
    while len(text) < size:
        text += ":" + str(string_hashcode(text))
    return text[:size]


@dataclass
class Operation:
    """One planned operation, in the form the database calls take."""

    op: int
    keynum: int
    key: str
    read_fields: list[str] | None
    values: dict[str, bytes]
    scan_length: int


class CoreWorkload:
    """One client's view of the workload: its generators, random stream and buffers."""

    def __init__(
        self, config: WorkloadConfig, shared: np.ndarray, window: np.ndarray, client_id: int = 0
    ):
        self.config = config
        self.shared = shared
        self.window = window
        self.client_id = client_id
        self.rng = _rng.new_state(config.seed * 1_000_003 + client_id)
        self.cfg = kernel_settings(config)
        self.ops = operation_table(config)
        self.keyg = key_chooser(config)
        self.fieldg = gen.uniform_state(0, config.fieldcount - 1)
        self.lengthg = field_length_generator(config)
        self.scang = scan_length_generator(config)
        self.hdr = np.zeros(HEADER_SLOTS, dtype=np.int64)
        self.keybuf = np.zeros(KEY_BUFFER + config.zeropadding, dtype=np.uint8)
        self.lens = np.zeros(config.fieldcount, dtype=np.int64)
        self.vbuf = np.zeros(config.fieldcount * max_field_length(config), dtype=np.uint8)
        self.names = config.fieldnames
        if config.readallfieldsbyname or config.dataintegrity:
            self._all_fields: list[str] | None = list(self.names)
        else:
            self._all_fields = None

    # -- planning ------------------------------------------------------------------------
    def plan(self, load: bool) -> Operation:
        plan_operation(
            load,
            self.cfg,
            self.ops,
            self.keyg,
            self.fieldg,
            self.lengthg,
            self.scang,
            self.rng,
            self.shared,
            self.hdr,
            self.keybuf,
            self.lens,
            self.vbuf,
        )
        hdr = self.hdr
        key = self.keybuf[: hdr[H_KEYLEN]].tobytes().decode("ascii")
        op, read_field = int(hdr[H_OP]), int(hdr[H_READFIELD])
        if read_field != ALL_FIELDS:
            read_fields: list[str] | None = [self.names[read_field]]
        else:  # by name only for plain reads: Java's scan and RMW pass null
            read_fields = self._all_fields if op == READ else None
        return Operation(
            op,
            int(hdr[H_KEYNUM]),
            key,
            read_fields,
            self._collect_values(key, int(hdr[H_WRITEFIELD])),
            int(hdr[H_SCANLEN]),
        )

    def _collect_values(self, key: str, write_field: int) -> dict[str, bytes]:
        if write_field == NO_VALUES:
            return {}
        fields = list(range(len(self.names))) if write_field == ALL_FIELDS else [write_field]
        values: dict[str, bytes] = {}
        pos = 0
        buf = self.vbuf
        for slot, f in enumerate(fields):
            length = int(self.lens[slot])
            name = self.names[f]
            if self.config.dataintegrity:
                values[name] = deterministic_value(key, name, length).encode()
            else:
                values[name] = buf[pos : pos + length].tobytes()
            pos += length
        return values

    # -- executing (CoreWorkload.doInsert / doTransaction) ---------------------------------
    def do_insert(self, db) -> bool:
        """Load one record; retries as core_workload_insertion_retry_limit says."""
        op = self.plan(load=True)
        table = self.config.table
        retries = 0
        while True:
            status = db.insert(table, op.key, op.values)
            if status.ok or retries >= self.config.insertion_retry_limit:
                return True
            retries += 1
            time.sleep(self.config.insertion_retry_interval * (0.8 + 0.4 * np.random.random()))

    def do_transaction(self, db) -> bool:
        op = self.plan(load=False)
        table = self.config.table
        if op.op == READ:
            _, cells = db.read(table, op.key, op.read_fields)
            self._verify(db, op.key, cells)
        elif op.op == UPDATE:
            db.update(table, op.key, op.values)
        elif op.op == INSERT:
            try:
                db.insert(table, op.key, op.values)
            finally:
                acknowledge(self.shared, self.window, op.keynum)
        elif op.op == SCAN:
            db.scan(table, op.key, op.scan_length, op.read_fields)
        else:
            self._read_modify_write(db, op)
        return True

    def _read_modify_write(self, db, op: Operation) -> None:
        m: Measurements = db.measurements
        intended = db.intended_start_ns()
        start = time.monotonic_ns()
        status, cells = db.read(self.config.table, op.key, op.read_fields)
        if status.ok:
            status = db.update(self.config.table, op.key, op.values)
        end = time.monotonic_ns()
        self._verify(db, op.key, cells)
        m.record("READ-MODIFY-WRITE", status, intended, start, end)

    def _verify(self, db, key: str, cells: dict[str, bytes]) -> None:
        """CoreWorkload.verifyRow (dataintegrity only): VERIFY OK / UNEXPECTED_STATE / ERROR."""
        if not self.config.dataintegrity:
            return
        start = time.monotonic_ns()
        status: Status = OK
        if not cells:
            status = ERROR
        else:
            for name, value in cells.items():
                expected = deterministic_value(key, name, self.config.fieldlength).encode()
                if value != expected:
                    status = UNEXPECTED_STATE
                    break
        end = time.monotonic_ns()
        db.measurements.measure("VERIFY", end - start)
        db.measurements.report_status("VERIFY", status)
