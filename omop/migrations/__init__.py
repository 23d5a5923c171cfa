"""Alembic migrations of the rtcohort schema."""
