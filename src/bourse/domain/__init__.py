"""Pure rules of the platform: no I/O, no frameworks (see docs/architecture.md)."""
