"""Use cases: each one a unit of work over the ports in ``ports.py``."""
