"""`SharedFileLog`: a durable decision log shared by the controllers of one machine.

Files in the log directory:
    log          header (magic, base index) + records: index u64, length u32, crc32 u32,
                 payload; appended and fdatasync'd by the leader only
    commit       the commit index (u64): readers never read past it
    leader.lock  flock'd by the leader for as long as it lives
    leader.json  {"leader": id, "term": n, "pid": pid}, rewritten at each takeover
    snapshot-<index>.bin   state-machine snapshots (the newest two are kept)

Leadership: every campaigning controller blocks in flock(LOCK_EX) on leader.lock in a
thread; the kernel grants it to one, and releases it when that process dies, so another
takes over. A new leader repairs a torn tail (a record cut by a crash), counts every
whole record as committed (they were all written by a leader before it died), and bumps
the term. A leader that is paused (SIGSTOP) keeps the lock: no failover until it dies,
unlike APUS's view change. All controllers must share this directory's filesystem.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path

from gaia.tripod.decision_log import LogTruncatedError, NotLeaderError

MAGIC = b"TRPLOG1\0"
HEADER = struct.Struct("<8sQ")  # magic, base index (entries start at base + 1)
RECORD = struct.Struct("<QII")  # index, length, crc32
COMMIT = struct.Struct("<Q")
POLL_S = 0.005


class SharedFileLog:
    def __init__(
        self, directory: Path, controller_id: int, campaign: bool = True, durable: bool = True
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.controller_id = controller_id
        self.durable = durable
        self.log_path = self.directory / "log"
        self.commit_path = self.directory / "commit"
        self._append_lock = threading.Lock()
        self._leading = threading.Event()
        self._closed = False
        self._lock_fd: int | None = None
        self._ensure_files()
        self._reader: _Reader | None = None
        self._last_index = 0  # the leader's last appended index
        self._write_fd: int | None = None
        if campaign:
            threading.Thread(target=self._campaign, name="tripod-log-campaign", daemon=True).start()

    # -- setup and leadership ----------------------------------------------------------------
    def _ensure_files(self) -> None:
        """Create the log atomically if absent (several controllers may race here)."""
        if not self.log_path.exists():
            tmp = self.directory / f"log.tmp{os.getpid()}-{self.controller_id}"
            tmp.write_bytes(HEADER.pack(MAGIC, 0))
            try:
                os.link(tmp, self.log_path)
            except FileExistsError:
                pass
            tmp.unlink()
        if not self.commit_path.exists():
            tmp = self.directory / f"commit.tmp{os.getpid()}-{self.controller_id}"
            tmp.write_bytes(COMMIT.pack(0))
            try:
                os.link(tmp, self.commit_path)
            except FileExistsError:
                pass
            tmp.unlink()

    def _campaign(self) -> None:
        fd = os.open(self.directory / "leader.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            return
        with self._append_lock:  # close() takes it too: no take-over of a closed log
            if self._closed:
                os.close(fd)
                return
            self._lock_fd = fd
            self._take_over()
        self._leading.set()

    def _take_over(self) -> None:
        base, records = _scan(self.log_path)
        end = records[-1][2] if records else HEADER.size
        last = records[-1][0] if records else base
        self._write_fd = os.open(self.log_path, os.O_RDWR)
        os.ftruncate(self._write_fd, end)  # drop a torn tail
        self._sync(self._write_fd)
        self._last_index = last
        self._write_commit(last)
        term = 0
        try:
            term = int(json.loads((self.directory / "leader.json").read_text())["term"])
        except (OSError, ValueError, KeyError):
            pass
        _atomic_write(
            self.directory / "leader.json",
            json.dumps(
                {"leader": self.controller_id, "term": term + 1, "pid": os.getpid()}
            ).encode(),
        )

    def is_leader(self) -> bool:
        return self._leading.is_set()

    def wait_leader(self, timeout: float) -> bool:
        return self._leading.wait(timeout)

    def leader(self) -> int | None:
        info = self.leader_info()
        return None if info is None else int(info["leader"])

    def leader_info(self) -> dict[str, int] | None:
        try:
            info = json.loads((self.directory / "leader.json").read_text())
        except (OSError, ValueError):
            return None
        pid = int(info.get("pid", 0))
        if pid and not _pid_alive(pid):
            return None
        return info

    # -- writing (leader) --------------------------------------------------------------------
    def propose(self, entry: bytes, timeout: float = 5.0) -> int:
        if not self.is_leader() or self._write_fd is None:
            raise NotLeaderError(self.leader())
        with self._append_lock:
            index = self._last_index + 1
            record = RECORD.pack(index, len(entry), zlib.crc32(entry)) + entry
            os.lseek(self._write_fd, 0, os.SEEK_END)
            os.write(self._write_fd, record)
            self._sync(self._write_fd)
            self._last_index = index
            self._write_commit(index)
        return index

    def _write_commit(self, index: int) -> None:
        fd = os.open(self.commit_path, os.O_WRONLY)
        try:
            os.pwrite(fd, COMMIT.pack(index), 0)
        finally:
            os.close(fd)

    def _sync(self, fd: int) -> None:
        if self.durable:
            os.fdatasync(fd)

    # -- reading (everyone) ------------------------------------------------------------------
    def commit_index(self) -> int:
        try:
            return COMMIT.unpack(self.commit_path.read_bytes()[: COMMIT.size])[0]
        except (OSError, struct.error):
            return 0

    def read_committed(self, after: int, limit: int = 1000) -> list[tuple[int, bytes]]:
        commit = self.commit_index()
        if commit <= after:
            return []
        if self._reader is None or self._reader.stale():
            self._reader = _Reader(self.log_path)
        return self._reader.read(after, min(commit, after + limit))

    def wait_committed(self, after: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.commit_index() <= after:
            if time.monotonic() >= deadline or self._closed:
                return False
            time.sleep(POLL_S)
        return True

    # -- snapshots and compaction -------------------------------------------------------------
    def save_snapshot(self, index: int, data: bytes) -> None:
        _atomic_write(self.directory / f"snapshot-{index:012d}.bin", data)
        for old in sorted(self.directory.glob("snapshot-*.bin"))[:-2]:
            old.unlink(missing_ok=True)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        found = sorted(self.directory.glob("snapshot-*.bin"))
        if not found:
            return None
        path = found[-1]
        return int(path.stem.split("-")[1]), path.read_bytes()

    def compact(self, index: int) -> None:
        """Leader only: drop entries <= index (a snapshot at >= index must exist)."""
        if not self.is_leader():
            raise NotLeaderError(self.leader())
        snap = self.latest_snapshot()
        if snap is None or snap[0] < index:
            raise ValueError(f"no snapshot covers index {index}; save one before compacting")
        with self._append_lock:
            base, records = _scan(self.log_path)
            if index <= base:
                return
            tmp = self.directory / "log.compact"
            with open(tmp, "wb") as out, open(self.log_path, "rb") as src:
                out.write(HEADER.pack(MAGIC, index))
                for rec_index, start, end in records:
                    if rec_index > index:
                        src.seek(start)
                        out.write(src.read(end - start))
                out.flush()
                self._sync(out.fileno())
            os.replace(tmp, self.log_path)
            if self._write_fd is not None:
                os.close(self._write_fd)
            self._write_fd = os.open(self.log_path, os.O_RDWR)

    def close(self) -> None:
        """Stop leading (releases the flock) and reading."""
        self._closed = True
        self._leading.clear()
        with self._append_lock:
            for fd in (self._write_fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._write_fd = self._lock_fd = None
        if self._reader is not None:
            self._reader.close()


class _Reader:
    """Sequential reader of the log file; remembers where the next index starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "rb")  # noqa: SIM115 - kept open across reads
        self.inode = os.fstat(self.file.fileno()).st_ino
        magic, self.base = HEADER.unpack(self.file.read(HEADER.size))
        if magic != MAGIC:
            raise ValueError(f"{path} is not a TRIPOD decision log")
        self.next_index, self.offset = self.base + 1, HEADER.size

    def stale(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def read(self, after: int, upto: int) -> list[tuple[int, bytes]]:
        if after < self.base:
            raise LogTruncatedError(self.base)
        if after + 1 < self.next_index:  # asked to go back: rescan from the start
            self.next_index, self.offset = self.base + 1, HEADER.size
        out = []
        self.file.seek(self.offset)
        while self.next_index <= upto:
            head = self.file.read(RECORD.size)
            if len(head) < RECORD.size:
                break
            index, length, crc = RECORD.unpack(head)
            payload = self.file.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc or index != self.next_index:
                break
            self.offset += RECORD.size + length
            self.next_index += 1
            if index > after:
                out.append((index, payload))
        return out

    def close(self) -> None:
        self.file.close()


def _scan(path: Path) -> tuple[int, list[tuple[int, int, int]]]:
    """(base, [(index, start, end) of every whole record]) — stops at a torn tail."""
    data = path.read_bytes()
    magic, base = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path} is not a TRIPOD decision log")
    records, pos, expected = [], HEADER.size, base + 1
    while pos + RECORD.size <= len(data):
        index, length, crc = RECORD.unpack_from(data, pos)
        end = pos + RECORD.size + length
        if index != expected or end > len(data) or zlib.crc32(data[pos + RECORD.size : end]) != crc:
            break
        records.append((index, pos, end))
        pos, expected = end, expected + 1
    return base, records


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
