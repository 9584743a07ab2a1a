"""Switchyard AuthService: who is calling, what it may do, and where its usage goes."""

from switchyard_auth.server import build

__all__ = ["build"]
