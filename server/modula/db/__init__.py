"""Storage: the connection layer, core tables, migrations and database errors."""
