"""Traditional Multi-Paxos over TCP with a stable leader (see node.py)."""
