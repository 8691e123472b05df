"""Drivers for external consensus peers: etcd, ZooKeeper, PySyncObj (issue #6)."""
