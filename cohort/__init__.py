"""Consent, enrolment, follow-up, projects, permissions, audit trail and erasure.

Modules: ``centres``, ``users``, ``consent``, ``schedule``, ``vital``, ``contacts``,
``invitations``, ``outbox``, ``projects``, ``permissions``, ``audit``, ``erasure`` and
``service`` (the Python API taking a session and the acting user). See
``docs/cohort.md``.
"""

from __future__ import annotations

__all__ = [
    "audit",
    "centres",
    "consent",
    "contacts",
    "erasure",
    "errors",
    "invitations",
    "outbox",
    "permissions",
    "projects",
    "schedule",
    "service",
    "users",
    "vital",
]
