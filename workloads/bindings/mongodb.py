"""YCSB's mongodb binding (site.ycsb.db.MongoDbClient), on pymongo.

Schema, as the Java binding: database `ycsb` (or the one named in mongodb.url), one
collection per table (`usertable`), one document per record keyed by `_id` = the YCSB
key, each field stored as BSON binary (Java stores `ByteIterator.toArray()`).

Reproduced semantics: insert = insertOne (or replaceOne with upsert when
mongodb.upsert=true), read = find by `_id` with a projection of the requested fields
(absent: NOT_FOUND; only binary values are returned, as fillMap does), scan =
find(`_id` >= start).sort(`_id`).limit(n) (nothing found: ERROR, as Java), update =
updateOne(`$set`) (no match: NOT_FOUND), delete = deleteOne. Write concern w=1 (the
binding's default URL). Bulk inserts (batchsize > 1) are not ported.
"""

from __future__ import annotations

import re

import pymongo
import pymongo.errors

from workloads.bindings.base import DB, Fields, Values, prop
from workloads.measurements import ERROR, NOT_FOUND, OK, Status

DEFAULT_URL = "mongodb://localhost:27017/ycsb?w=1"
DEFAULT_DATABASE = "ycsb"


def timeout_ms_from_url(url: str | None, option: str, default: int) -> int:
    """A `...TimeoutMS=N` option of a mongodb:// URL's query (Java passes the URL, and
    with it these options, to the driver), else `default`."""
    match = re.search(rf"[?&]{option}=(\d+)", url or "", re.IGNORECASE)
    return int(match.group(1)) if match else default


def database_from_url(url: str | None) -> str:
    """The database named in a mongodb:// URL, unless absent or `admin` (Java's rule)."""
    if not url:
        return DEFAULT_DATABASE
    match = re.match(r"^mongodb(?:\+srv)?://[^/]*/([^?]*)", url)
    name = match.group(1) if match else ""
    return name if name and name != "admin" else DEFAULT_DATABASE


class MongoDB(DB):
    name = "mongodb"
    default_port = 27017
    connection_errors = (pymongo.errors.ConnectionFailure, ConnectionError, OSError)

    def _connect(self, host: str, port: int) -> None:
        self.upsert = prop(self.props, "mongodb.upsert", "false").lower() == "true"
        url = self.props.get("mongodb.url")
        self.client = pymongo.MongoClient(
            host=host,
            port=port,
            w=1,
            directConnection=True,
            serverSelectionTimeoutMS=timeout_ms_from_url(url, "serverSelectionTimeoutMS", 2000),
            connectTimeoutMS=timeout_ms_from_url(url, "connectTimeoutMS", 5000),
        )
        self.client.admin.command("ping")
        self.db = self.client[database_from_url(self.props.get("mongodb.url"))]

    def _close(self) -> None:
        self.client.close()

    @staticmethod
    def _projection(fields: Fields) -> dict[str, int] | None:
        return None if fields is None else {f: 1 for f in fields}

    @staticmethod
    def _fill(document: dict) -> Values:
        return {k: bytes(v) for k, v in document.items() if isinstance(v, (bytes, bytearray))}

    def _read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        document = self.db[table].find_one({"_id": key}, self._projection(fields))
        if document is None:
            return NOT_FOUND, {}
        return OK, self._fill(document)

    def _scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        cursor = (
            self.db[table]
            .find({"_id": {"$gte": startkey}}, self._projection(fields))
            .sort("_id", pymongo.ASCENDING)
            .limit(count)
        )
        docs = [self._fill(d) for d in cursor]
        return (OK if docs else ERROR), docs

    def _update(self, table: str, key: str, values: Values) -> Status:
        result = self.db[table].update_one({"_id": key}, {"$set": dict(values)})
        if result.acknowledged and result.matched_count == 0:
            return NOT_FOUND
        return OK

    def _insert(self, table: str, key: str, values: Values) -> Status:
        document = {"_id": key, **values}
        if self.upsert:
            self.db[table].replace_one({"_id": key}, document, upsert=True)
        else:
            self.db[table].insert_one(document)
        return OK

    def _delete(self, table: str, key: str) -> Status:
        result = self.db[table].delete_one({"_id": key})
        return OK if result.deleted_count else NOT_FOUND
