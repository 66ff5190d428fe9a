"""SQL storage adapter: tables, repositories, unit of work, engines, migrations."""
