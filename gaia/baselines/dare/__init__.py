"""DARE-style sole-leader replication over APUS's shared-memory regions (see node.py)."""
