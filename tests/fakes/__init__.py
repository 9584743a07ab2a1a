"""Fakes of upstream provider APIs, shared by the conformance and end-to-end suites."""
