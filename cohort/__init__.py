"""Consent, enrolment, follow-up, projects, permissions, audit trail and erasure."""

__all__: list[str] = []
