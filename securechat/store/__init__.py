"""Persistence: SQLAlchemy models, the engine and session factory, and schema migrations.

SQLAlchemy, ORM rows and sessions stay inside ``store``: its modules hand everything above
frozen values (``chat`` for rooms and messages, ``users`` for users and resume tokens).
Import what you need from its submodules (``store.database``, ``store.migrate``): this
package imports none of them, so that reaching one (``store.urls``) does not load the rest.
"""
