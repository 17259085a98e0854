"""The only I/O: PostgreSQL, crypto libraries, venues, mail, payments, bus."""
