"""What the web app is told by ``rtcohort serve``: resolved paths and the database URL.

``dashboards`` may not import ``rtcohort`` (ARCHITECTURE.md section 1), so the
composition root resolves the settings (defaults included) and passes them to the
server process as environment variables (``rtcohort.cli.serve.server_env``); this
module only reads them, with no defaults of its own.

Examples
--------
>>> env = {"RTCOHORT_DATABASE_URL": "sqlite:///x.db", "RTCOHORT_DATA_DIR": "/d",
...        "RTCOHORT_AUDIT_KEY_FILE": "/d/keys/audit.key",
...        "RTCOHORT_AUDIT_CHECKPOINTS": "/d/audit-checkpoints.log"}
>>> WebConfig.from_env(env).key_dir is None
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REQUIRED", "WebConfig", "WebConfigError"]

#: Variables ``rtcohort serve`` always sets.
REQUIRED = (
    "RTCOHORT_DATABASE_URL",
    "RTCOHORT_DATA_DIR",
    "RTCOHORT_AUDIT_KEY_FILE",
    "RTCOHORT_AUDIT_CHECKPOINTS",
)


class WebConfigError(RuntimeError):
    """The app was started without the configuration ``rtcohort serve`` passes."""


@dataclass(frozen=True)
class WebConfig:
    """The resolved configuration of one server process."""

    database_url: str
    data_dir: Path
    audit_key_file: Path
    audit_checkpoints: Path
    key_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        """Read the configuration; raise :class:`WebConfigError` naming what lacks."""
        source = os.environ if env is None else env
        missing = [name for name in REQUIRED if not source.get(name, "").strip()]
        if missing:
            raise WebConfigError(
                f"{', '.join(missing)} not set; start the app with rtcohort serve"
            )
        key_dir = source.get("RTCOHORT_KEY_DIR", "").strip()
        return cls(
            database_url=source["RTCOHORT_DATABASE_URL"].strip(),
            data_dir=Path(source["RTCOHORT_DATA_DIR"].strip()),
            audit_key_file=Path(source["RTCOHORT_AUDIT_KEY_FILE"].strip()),
            audit_checkpoints=Path(source["RTCOHORT_AUDIT_CHECKPOINTS"].strip()),
            key_dir=Path(key_dir) if key_dir else None,
        )
