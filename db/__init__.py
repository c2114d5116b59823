"""The runs database: SQLAlchemy models, the Store (the only door to the database), the
content-addressed artifact store and Alembic migrations. No torch, no UI, no Celery.

    from db.store import Store
    from db.access import SYSTEM
    store = Store.from_env(); store.upgrade()
See docs/architecture.md, section 2.
"""
