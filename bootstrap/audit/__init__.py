"""Audits of store closures: checks that run after a stage is built."""

from bootstrap.audit.hermetic import (
    AuditedPath,
    Violation,
    ViolationKind,
    audit_hermetic,
    render_json,
    render_table,
)

__all__ = [
    "AuditedPath",
    "Violation",
    "ViolationKind",
    "audit_hermetic",
    "render_json",
    "render_table",
]
