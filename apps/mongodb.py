"""MongoDB: a real `mongod` when one is on PATH, else SecantusDB (a MongoDB-wire-compatible
server on WiredTiger, from PyPI), else nx-27017 (one on SQLite).

No registry reachable here ships mongod (DESIGN.md). Both PyPI servers passed the same
check with pymongo — insert/find/update/delete/sort, clean SIGTERM, data intact after a
restart — but only SecantusDB 0.7 gives documents back byte for byte (nx-27017 0.8 stores
JSON: Decimal128 is refused, `replace_one` with binary values fails, and a unique index
accepts duplicate nulls), so it is preferred; nx-27017 starts faster (~0.1 s vs ~0.25 s)
and stays as the second fallback. Both serve each connection on its own Python thread or
task; identical state on replicas relies on the interception layer delivering inputs one
at a time. SecantusDB takes ~2 s to stop: its SIGTERM handler waits that long for an
accept thread that closing the listening socket does not wake (a wake-up connection
races with the handler, and a second SIGTERM re-enters its shutdown, so neither is
sent). `server_kind` (and a line in the server log) says which implementation ran;
result records carry it.

Digest: SHA-256 over every user database, collection and document, documents taken as
raw BSON and ordered by the BSON encoding of their `_id` (a total order that does not
depend on the implementation's sort). Field order is part of a MongoDB document, so it
counts: SecantusDB applies `$set` fields in name order as mongod >= 5.0 does, nx-27017
in the order given, and their digests differ after such updates.

Snapshot: a dump of every collection (its unique and sparse index specs, then its
documents as raw BSON) written through the client while the server runs; restore drops
the user databases and loads the dump. It works the same on every implementation and
needs no restart.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, UpdateOne

from apps.spawned import SpawnedServer, one_of
from gaia.errors import GaiaError

DATABASE = "ycsb"
KV_COLLECTION = "kv"
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
IMPLEMENTATIONS = ("auto", "mongod", "secantusdb", "nx-27017")
# kind -> (launcher script, importable module, PyPI distribution)
_PYPI_SERVERS = {
    "secantusdb": ("secantusd-py", "secantus", "secantusdb"),
    "nx-27017": ("nx-27017", "nx_27017", "nx-27017"),
}
_DUMP_MAGIC = "gaia-mongodb-dump-1"
_INSERT_BATCH = 1000


def _pypi_launcher(kind: str) -> str | None:
    """A PyPI server's launcher: next to this interpreter (an unactivated venv) or on PATH."""
    script, module, _ = _PYPI_SERVERS[kind]
    if importlib.util.find_spec(module) is None:
        return None
    beside = Path(sys.executable).parent / script
    return str(beside) if beside.exists() else shutil.which(script)


class MongoDB(SpawnedServer):
    name = "mongodb"
    # No Debian package ships mongod; these PyPI servers stand in for it.
    binary = ("mongod", "secantusdb / nx-27017 (PyPI)")

    def __init__(self, *args, implementation: str = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.implementation = one_of("MongoDB implementation", implementation, IMPLEMENTATIONS)

    # -- which server -------------------------------------------------------------------
    @classmethod
    def find_binary(cls) -> str:
        return cls._choose("auto")[1]

    @staticmethod
    def _choose(implementation: str) -> tuple[str, str]:
        """(kind, path) of the implementation to run."""
        mongod = shutil.which("mongod")
        if implementation in ("auto", "mongod") and mongod:
            return "mongod", mongod
        for kind in _PYPI_SERVERS:
            launcher = _pypi_launcher(kind)
            if implementation in ("auto", kind) and launcher:
                return kind, launcher
        raise GaiaError(
            f"no MongoDB server found for implementation {implementation!r} "
            "(no `mongod` on PATH, no secantusdb or nx-27017 in this Python environment)",
            "run `python3 tasks.py setup` (it installs secantusdb into .venv), "
            "or put a mongod on PATH",
        )

    @property
    def server_kind(self) -> str:
        kind, _ = self._choose(self.implementation)
        if kind in _PYPI_SERVERS:
            return f"{kind} {importlib.metadata.version(_PYPI_SERVERS[kind][2])}"
        return kind

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.make_data_dir() / "db"

    def prepare(self) -> None:
        self.db_path.mkdir(exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(f"gaia: MongoDB implementation = {self.server_kind}\n")

    def _empty_config(self) -> Path:
        config = self.make_data_dir() / "secantusd.toml"
        if not config.exists():
            config.write_text("# GAIA passes every setting on the command line\n")
        return config

    def command(self) -> list[str]:
        kind, path = self._choose(self.implementation)
        if kind == "mongod":
            argv = [
                path, "--dbpath", str(self.db_path), "--port", str(self.port),
                "--bind_ip", self.host, "--nounixsocket",
            ]  # fmt: skip
        elif kind == "secantusdb":
            argv = [
                # An empty config of our own: no auto-discovered ~/.secantus files.
                path, "--config", str(self._empty_config()),
                "--storage-path", str(self.db_path), "--host", self.host,
                "--port", str(self.port), "--standalone", "--cache-size", "64M",
            ]  # fmt: skip
        else:
            argv = [
                path, "--data-dir", str(self.db_path), "--host", self.host,
                "--port", str(self.port), "--log-file", "/dev/null",
                "--pid-file", str(self.make_data_dir() / "nx-27017.pid"),
            ]  # fmt: skip
        return argv + self.extra_args

    def client(self, raw: bool = False) -> MongoClient:
        options = {"document_class": RawBSONDocument} if raw else {}
        return MongoClient(
            self.host,
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=10_000,
            **options,
        )

    def ready(self) -> bool:
        # pymongo's server selection waits >= 500 ms for a server that is not up yet:
        # try a plain TCP connect first.
        with socket.create_connection((self.host, self.port), timeout=1.0):
            pass
        with MongoClient(
            self.host,
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=2000,
            connectTimeoutMS=1000,
            socketTimeoutMS=1000,
        ) as conn:
            return conn.admin.command("ping").get("ok") == 1

    # -- state --------------------------------------------------------------------------
    def _collections(self, conn: MongoClient) -> Iterator[tuple[str, str]]:
        for db_name in sorted(conn.list_database_names()):
            if db_name in SYSTEM_DATABASES:
                continue
            for coll in sorted(conn[db_name].list_collection_names()):
                if not coll.startswith("system."):
                    yield db_name, coll

    @staticmethod
    def _sorted_documents(conn: MongoClient, db_name: str, coll: str) -> list[bytes]:
        docs = list(conn[db_name][coll].find({}))
        docs.sort(key=lambda doc: bson.encode({"_id": doc["_id"]}))
        return [doc.raw for doc in docs]

    def digest(self) -> str:
        hasher = hashlib.sha256()
        with self.client(raw=True) as conn:
            for db_name, coll in self._collections(conn):
                hasher.update(f"{db_name}\0{coll}\0".encode())
                for raw in self._sorted_documents(conn, db_name, coll):
                    hasher.update(raw)
        return hasher.hexdigest()

    def snapshot(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "mongodb.bson"
        with self.client(raw=True) as conn, open(target, "wb") as out:
            out.write(bson.encode({"magic": _DUMP_MAGIC}))
            for db_name, coll in self._collections(conn):
                documents = self._sorted_documents(conn, db_name, coll)
                header = {
                    "db": db_name,
                    "coll": coll,
                    "count": len(documents),
                    "indexes": _index_specs(conn[db_name][coll].index_information()),
                }
                out.write(bson.encode(header))
                out.writelines(documents)
        return target

    def restore(self, snapshot: Path) -> None:
        with open(snapshot, "rb") as dump, self.client() as conn:
            stream = bson.decode_file_iter(dump, bson.CodecOptions(document_class=RawBSONDocument))
            first = next(stream, None)
            if first is None or first.get("magic") != _DUMP_MAGIC:
                raise GaiaError(
                    f"{snapshot} is not a GAIA MongoDB snapshot",
                    "pass the file returned by MongoDB.snapshot()",
                )
            for db_name in conn.list_database_names():
                if db_name not in SYSTEM_DATABASES:
                    conn.drop_database(db_name)
            for header in stream:
                collection = conn[header["db"]][header["coll"]]
                conn[header["db"]].create_collection(header["coll"])
                documents = [next(stream) for _ in range(header["count"])]
                for start in range(0, len(documents), _INSERT_BATCH):
                    collection.insert_many(documents[start : start + _INSERT_BATCH])
                for spec in header["indexes"]:
                    collection.create_index(
                        list(spec["key"].items()), name=spec["name"],
                        unique=spec["unique"], sparse=spec["sparse"],
                    )  # fmt: skip

    # -- key-value view -----------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        writes = [
            UpdateOne({"_id": key}, {"$set": {"v": value}}, upsert=True) for key, value in items
        ]
        with self.client() as conn:
            coll = conn[DATABASE][KV_COLLECTION]
            for start in range(0, len(writes), _INSERT_BATCH):
                coll.bulk_write(writes[start : start + _INSERT_BATCH], ordered=True)

    def get(self, key: str) -> bytes | None:
        with self.client() as conn:
            doc = conn[DATABASE][KV_COLLECTION].find_one({"_id": key})
        return None if doc is None else bytes(doc["v"])


def _index_specs(info: dict) -> list[dict]:
    """The secondary indexes worth restoring (key order, name, unique, sparse)."""
    return [
        {
            "name": name,
            "key": dict(spec["key"]),
            "unique": bool(spec.get("unique", False)),
            "sparse": bool(spec.get("sparse", False)),
        }
        for name, spec in sorted(info.items())
        if name != "_id_"
    ]
