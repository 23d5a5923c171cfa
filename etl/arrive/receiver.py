"""C-STORE / C-ECHO service class provider that files what a TPS sends into an inbox.

Accepts every storage SOP class of pynetdicom's ``AllStoragePresentationContexts`` with
every transfer syntax, and Verification. Associations to another called AE title, and
from callers not listed (when any are listed), are rejected. Each object is written
atomically by :class:`etl.arrive.inbox.Inbox`. With a centre key the object is
pseudonymised in
memory before anything is written, so the inbox never holds identifiable data; what
cannot be pseudonymised goes to the quarantine outside the inbox with its reason and,
when the PatientID is readable, its keyed pseudonym (so erasure finds it).

Statuses returned: 0x0000 stored (or an identical re-send), 0xA700 out of resources
(disk full: nothing is left behind), 0xC000 cannot understand (not DICOM, truncated,
invalid UIDs, refused by the pseudonymisation: quarantined with the reason).
"""

from __future__ import annotations

import io
import logging
import signal
import threading
import time
import zlib
from collections.abc import Sequence
from types import FrameType
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from etl.arrive.inbox import Inbox, InboxError, check_uids, is_disk_full
from etl.deid.codec import build_file_meta, split_file, top_level_values
from etl.deid.identity import raw_pseudonym
from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import DeidOutcome, deidentify_bytes
from etl.errors import DeidRefusedError

__all__ = ["STATUS_CANNOT_UNDERSTAND", "STATUS_OUT_OF_RESOURCES", "Receiver"]

_LOG = logging.getLogger(__name__)
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000
_IMPLICIT_LE = "1.2.840.10008.1.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_STUDY_UID, _SOP_UID = 0x0020000D, 0x00080018
_SLOW_STORE_S = 5.0


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]
    return status


class Receiver:
    """A DICOM node that files received objects into an inbox.

    The inbox is an :class:`~etl.arrive.inbox.Inbox`.

    Parameters
    ----------
    inbox : Inbox
        Where objects go.
    ae_title : str
        Our AE title; associations calling another title are rejected.
    port : int
        TCP port (0 picks a free one; see :attr:`port`).
    host : str
        Address to listen on (default loopback only).
    allowed_callers : sequence of str
        Calling AE titles accepted; empty accepts any caller.
    key : CentreKey, optional
        When given, every object is pseudonymised before it is written.
    """

    def __init__(
        self,
        inbox: Inbox,
        *,
        ae_title: str = "RTCOHORT",
        port: int = 11112,
        host: str = "127.0.0.1",
        allowed_callers: Sequence[str] = (),
        key: CentreKey | None = None,
    ) -> None:
        self.inbox = inbox
        self.key = key
        self._address = (host, port)
        self._ae = AE(ae_title=ae_title)
        self._ae.require_called_aet = True
        self._ae.require_calling_aet = list(allowed_callers)
        self._ae.maximum_pdu_size = 0  # no limit: fewer, larger PDUs
        for context in AllStoragePresentationContexts:
            self._ae.add_supported_context(
                cast(str, context.abstract_syntax), ALL_TRANSFER_SYNTAXES
            )
        self._ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        self._server: Any = None
        self._busy = threading.Condition()
        self._in_flight = 0
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._server is None:
            return self._address[1]
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start listening in background threads."""
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
        ]
        self._server = self._ae.start_server(
            self._address, block=False, evt_handlers=handlers
        )
        _LOG.info(
            "listening on %s:%d as %s", self._address[0], self.port, self._ae.ae_title
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop accepting, let associations finish, wait for writes in progress."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.shutdown()
        for assoc in list(server.active_associations):
            assoc.join(timeout_s)
            if assoc.is_alive():
                assoc.abort()
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)
        _LOG.info("receiver stopped")

    def serve_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly (main thread only)."""

        def _request_stop(signum: int, _frame: FrameType | None) -> None:
            _LOG.info("signal %d: stopping", signum)
            self._stop.set()

        previous = {
            sig: signal.signal(sig, _request_stop)
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return."""
        self._stop.set()

    # -- handlers -------------------------------------------------------------------

    def _on_echo(self, _event: evt.Event) -> int:
        return STATUS_SUCCESS

    def _on_store(self, event: evt.Event) -> Dataset | int:
        with self._busy:
            self._in_flight += 1
        start = time.monotonic()
        try:
            return self._store(event)
        finally:
            seconds = time.monotonic() - start
            if seconds > _SLOW_STORE_S:
                _LOG.warning("C-STORE took %.1f s (slow disk?)", seconds)
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()

    def _store(self, event: evt.Event) -> Dataset | int:
        caller = str(event.assoc.requestor.ae_title).strip()
        syntax = str(event.context.transfer_syntax)
        request = cast(C_STORE, event.request)
        body = cast(io.BytesIO, request.DataSet).getvalue()
        data = (
            build_file_meta(
                str(request.AffectedSOPClassUID),
                str(request.AffectedSOPInstanceUID),
                syntax,
            )
            + body
        )
        try:
            # the UIDs as received: pseudonymisation would remap even '..' to a UID
            study, sop = _uids(body, syntax)
            check_uids(study, sop)
            if self.key is not None:
                result = deidentify_bytes(data, self.key)
                if result.data is None or result.outcome is DeidOutcome.QUARANTINED:
                    raise DeidRefusedError(result.reason)
                data, study, sop = (
                    result.data,
                    result.study_instance_uid,
                    result.sop_instance_uid,
                )
            outcome = self.inbox.store(data, study, sop, caller)
        except (DeidRefusedError, InboxError) as exc:
            return self._reject(data, str(exc), caller)
        except OSError as exc:
            reason = (
                "disk full" if is_disk_full(exc) else f"cannot write: {exc.strerror}"
            )
            _LOG.error("C-STORE from %s failed: %s", caller, reason)
            return _status(STATUS_OUT_OF_RESOURCES, reason)
        _LOG.info("%s %s", outcome.status.value, outcome.path.name)
        return STATUS_SUCCESS

    def _reject(self, data: bytes, reason: str, caller: str) -> Dataset:
        try:
            self.inbox.quarantine(data, reason, caller, raw_pseudonym(data, self.key))
        except OSError as exc:
            _LOG.error("cannot quarantine (%s): %s", exc.strerror, reason)
            return _status(STATUS_OUT_OF_RESOURCES, "cannot quarantine")
        return _status(STATUS_CANNOT_UNDERSTAND, reason)


def _uids(body: bytes, syntax: str) -> tuple[str, str]:
    """Return (StudyInstanceUID, SOPInstanceUID) of a received data set."""
    if syntax == _DEFLATED:
        body = zlib.decompress(body, -15)
    implicit = syntax == _IMPLICIT_LE
    try:
        split_file(body)
        found = top_level_values(
            body, implicit, lambda tag, _vr: tag in (_STUDY_UID, _SOP_UID)
        )
    except (DeidRefusedError, zlib.error) as exc:
        raise DeidRefusedError(f"undecodable data set: {exc}") from exc
    values = {
        t: v[1].decode("latin-1").rstrip("\x00 ").strip() for t, v in found.items()
    }
    if not values.get(_STUDY_UID) or not values.get(_SOP_UID):
        raise DeidRefusedError("no StudyInstanceUID or SOPInstanceUID")
    return values[_STUDY_UID], values[_SOP_UID]
