"""The mongodb binding reads what Java's binding reads from mongodb.url."""

from workloads.bindings.mongodb import database_from_url, timeout_ms_from_url


def test_database_from_url_follows_java():
    assert database_from_url(None) == "ycsb"
    assert database_from_url("mongodb://h:1/admin?w=1") == "ycsb"
    assert database_from_url("mongodb://h:1/bench?w=1") == "bench"


def test_driver_timeouts_come_from_the_url_query():
    url = "mongodb://h:1/ycsb?w=1&serverSelectionTimeoutMS=30000"
    assert timeout_ms_from_url(url, "serverSelectionTimeoutMS", 2000) == 30000
    assert timeout_ms_from_url(url, "connectTimeoutMS", 5000) == 5000
    assert timeout_ms_from_url(None, "serverSelectionTimeoutMS", 2000) == 2000
