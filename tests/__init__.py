"""Switchyard test suites."""
