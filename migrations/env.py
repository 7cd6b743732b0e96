"""Alembic environment: the URL comes from the same settings as the service."""
from alembic import context
from sqlalchemy import create_engine, pool

from app.database import sqlalchemy_url
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # `app.migrations.run_migrations` passes the resolved URL (DATABASE_URL or the embedded cluster).
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from app.settings import get_settings

        url = get_settings().database_url
    if not url:
        raise RuntimeError("no database URL: run migrations through `landrelease db upgrade head`")
    return sqlalchemy_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
