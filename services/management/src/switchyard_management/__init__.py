"""Switchyard ManagementService: the system of record (spend logs today) on SQLAlchemy + Alembic."""

from switchyard_management.server import build

__all__ = ["build"]
