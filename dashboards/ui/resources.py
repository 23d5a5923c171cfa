"""What the app holds for its lifetime: engine, keys, wording (``st.cache_resource``).

Never a session: each page opens one per action (``with factory().begin()``).
Centre keys (date offsets, the contact register) come from the key folder given by
``rtcohort serve --key-dir`` (``RTCOHORT_KEY_DIR``), never from the database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dashboards.config import WebConfig
from dashboards.drafts import DraftStore
from etl.deid.keys import CentreKey
from instruments.wording import Wording

__all__ = [
    "centre_key",
    "config",
    "drafts",
    "drafts_folder",
    "engine",
    "factory",
    "key_dir",
    "signing_key",
    "wording",
]

_LOG = logging.getLogger(__name__)


def config() -> WebConfig:
    """Return the configuration ``rtcohort serve`` passed (see dashboards.config)."""
    return WebConfig.from_env()


@st.cache_resource(show_spinner=False)
def _engine(url: str, audit_key_file: str, audit_checkpoints: str) -> Engine:
    from cohort.audit import AuditFiles, bind
    from omop.engine import make_engine

    # Every page's read writes its audit record: take SQLite's write lock first.
    eng = make_engine(url, sqlite_immediate=True)
    bind(eng, AuditFiles(Path(audit_key_file), Path(audit_checkpoints)))
    return eng


def engine() -> Engine:
    """Return the engine of the configured database, bound to its audit files."""
    cfg = config()
    return _engine(
        cfg.database_url, str(cfg.audit_key_file), str(cfg.audit_checkpoints)
    )


def factory() -> sessionmaker[Session]:
    """Return a session factory on :func:`engine`."""
    from omop.engine import session_factory

    return session_factory(engine())


def key_dir() -> Path | None:
    """Return the folder of centre keys (``RTCOHORT_KEY_DIR``), or None when unset."""
    return config().key_dir


@st.cache_resource(show_spinner=False)
def _centre_key(folder: str, code: str) -> CentreKey | None:
    from etl.deid.keys import load_key

    path = Path(folder) / f"{code}.key"
    if not path.exists():
        _LOG.warning("no key for centre %s in the key folder", code)
        return None
    return load_key(path, code)


def centre_key(code: str) -> CentreKey | None:
    """Return the key of centre ``code`` from the key folder (None: missing)."""
    folder = key_dir()
    return _centre_key(str(folder), code.upper()) if folder else None


@st.cache_resource(show_spinner=False)
def _signing_key(path: str) -> bytes:
    from cohort.invitations import load_signing_key

    return load_signing_key(Path(path))


def signing_key() -> bytes:
    """Return the invitation signing key (``<data_dir>/invitation-signing.key``)."""
    from cohort.invitations import SIGNING_KEY_FILE

    return _signing_key(str(config().data_dir / SIGNING_KEY_FILE))


def drafts_folder() -> Path:
    """Return where PROM drafts are kept (``<data_dir>/prom-drafts``)."""
    return config().data_dir / "prom-drafts"


def drafts() -> DraftStore:
    """Return the draft store (see :mod:`dashboards.drafts`)."""
    return DraftStore(drafts_folder())


@st.cache_resource(show_spinner=False)
def _wording(path: str) -> Wording:
    from instruments.qlq_c30 import QLQ_C30
    from instruments.wording import load_wording

    return load_wording(path, QLQ_C30)


def wording() -> Wording:
    """Return the site wording (``RTCOHORT_WORDING_FILE``), else none."""
    value = os.environ.get("RTCOHORT_WORDING_FILE", "").strip()
    return _wording(value) if value else Wording.empty()
