"""Platform settings, read from the environment with the ``RTCOHORT_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from etl.deid.keys import DEFAULT_DATE_SHIFT_MAX_DAYS, MAX_DATE_SHIFT_DAYS

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Settings of one rtcohort installation.

    Attributes
    ----------
    data_dir
        Folder for the embedded database, the file store and other local state
        (``RTCOHORT_DATA_DIR``, default ``./rtcohort-data``).
    database_url
        SQLAlchemy URL (``RTCOHORT_DATABASE_URL``); default an SQLite file
        ``rtcohort.sqlite`` in ``data_dir``. PostgreSQL: ``postgresql+psycopg://...``.
    user
        The platform user that commands act as (``RTCOHORT_USER``, default ``admin``:
        whoever holds the database URL is its administrator). Any other user must
        prove it: ``token`` or, on a terminal, a password prompt.
    token
        A personal API token of ``user`` (``RTCOHORT_TOKEN``; ``rtcohort users token
        create``).
    date_shift_max_days
        Consortium bound of the per-patient date shift
        (``RTCOHORT_DATE_SHIFT_MAX_DAYS``, default 182): a key made now shifts a
        patient's dates by -182 to -1 days. Each key records its bound, so changing
        this setting changes new keys only.
    audit_key_file
        The audit MAC key, outside the database (``RTCOHORT_AUDIT_KEY_FILE``, default
        ``<data_dir>/keys/audit.key``); ``rtcohort db upgrade`` creates it.
    audit_checkpoints
        The append-only checkpoint log of the audit chain
        (``RTCOHORT_AUDIT_CHECKPOINTS``, default ``<data_dir>/audit-checkpoints.log``).
    cdm_source_name
        ``cdm_source.cdm_source_name`` written by ``rtcohort db upgrade``
        (``RTCOHORT_CDM_SOURCE_NAME``, default ``rtcohort``).

    Examples
    --------
    >>> Settings(data_dir=Path("/tmp/x")).resolved_database_url().startswith("sqlite")
    True
    """

    model_config = SettingsConfigDict(env_prefix="RTCOHORT_", extra="ignore")

    data_dir: Path = Field(default=Path("./rtcohort-data"))
    database_url: SecretStr | None = None
    user: str = "admin"
    token: SecretStr | None = None
    admin_password: SecretStr | None = None
    date_shift_max_days: int = Field(
        default=DEFAULT_DATE_SHIFT_MAX_DAYS, ge=1, le=MAX_DATE_SHIFT_DAYS
    )
    audit_key_file: Path | None = None
    audit_checkpoints: Path | None = None
    cdm_source_name: str = Field(default="rtcohort", min_length=1, max_length=255)

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to the SQLite file in ``data_dir``."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'rtcohort.sqlite').resolve()}"

    def resolved_audit_key_file(self) -> Path:
        """Return the audit key file, defaulting to ``<data_dir>/keys/audit.key``."""
        return self.audit_key_file or self.data_dir / "keys" / "audit.key"

    def resolved_audit_checkpoints(self) -> Path:
        """Return the checkpoint log, default ``<data_dir>/audit-checkpoints.log``."""
        return self.audit_checkpoints or self.data_dir / "audit-checkpoints.log"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings of this process, read once from the environment."""
    return Settings()
