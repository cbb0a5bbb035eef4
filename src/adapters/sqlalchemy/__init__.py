"""SQLAlchemy adapters: tables, repositories, unit of work, library search index, migrations."""
