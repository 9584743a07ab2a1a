"""The ``switchyard`` command: host services in a process, or supervise the whole gateway."""

from switchyard_gateway.host import host

__all__ = ["host"]
