"""Event buses: in-process by default; NATS JetStream for several processes (later)."""
