"""Alembic environment: uses the engine the store hands over (or `sqlalchemy.url`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from db.session import make_engine
        from diffusion.settings import database_url

        url = config.get_main_option("sqlalchemy.url") or database_url()
        engine = make_engine(url).execution_options(sqlite_immediate=True)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # batch mode copies a table and drops the old one: that must not cascade
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
                # one transaction for the whole upgrade, on SQLite too (its DDL is
                # transactional; alembic assumes not, and would commit after each migration,
                # letting a second migrator that waited on BEGIN IMMEDIATE run the next
                # migration while the first still plans to: "duplicate column name")
                transactional_ddl=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":  # one migrator at a time
                    connection.execute(text("SELECT pg_advisory_xact_lock(7204519)"))
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left dangling references: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection, *, on: bool) -> None:  # noqa: ANN001
    """PRAGMA foreign_keys on the raw connection, outside any transaction (inside one SQLite
    ignores it). Off while migrating: SQLite's DROP TABLE of a rebuilt parent table would
    otherwise delete every child row through ON DELETE CASCADE."""
    raw = connection.connection.dbapi_connection
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def run_migrations_offline() -> None:
    from diffusion.settings import database_url

    context.configure(
        url=config.get_main_option("sqlalchemy.url") or database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
