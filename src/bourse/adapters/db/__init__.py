"""PostgreSQL: the embedded server, the engine, tables, repositories, unit of work, migrations."""
