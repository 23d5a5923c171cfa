"""A C-STORE service class user: send DICOM files to a node, as a TPS does.

:func:`send_files` opens one association to the called node, proposing the storage
SOP classes and transfer syntaxes of the files (read from their Part-10 file meta
information only), and sends each file by path: pynetdicom streams the encoded data
set without decoding it. It is what ``rtcohort demo`` uses to deliver the synthetic
cohort to the receiver (:mod:`etl.arrive.receiver`) on loopback.

Two choices make it fast: ``TCP_NODELAY`` on the socket (Nagle's algorithm with the
peer's delayed acknowledgement otherwise costs ~40 ms per C-STORE), and several
associations in parallel (pynetdicom waits by polling, so one association spends
most of its time idle).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE
from pynetdicom.association import Association

from etl.errors import EtlError

_LOG = logging.getLogger(__name__)

__all__ = ["SendError", "SendSummary", "send_files"]

#: Presentation contexts one association may propose (PS3.8 allows 128).
_MAX_CONTEXTS = 128


class SendError(EtlError, ConnectionError):
    """The association to the called node was refused or aborted."""


@dataclass
class SendSummary:
    """What :func:`send_files` sent: files accepted, and the refused ones.

    ``failed`` holds ``(file, status)`` for each file the node did not store
    (a C-STORE status other than 0x0000; ``-1`` when no response came).
    """

    sent: int = 0
    failed: list[tuple[str, int]] = field(default_factory=list)


def _contexts(files: Sequence[Path]) -> dict[str, set[str]]:
    """Return ``{SOP class UID: {transfer syntax UID}}`` from the files' meta."""
    out: dict[str, set[str]] = {}
    for path in files:
        meta = read_file_meta_info(path)
        out.setdefault(str(meta.MediaStorageSOPClassUID), set()).add(
            str(meta.TransferSyntaxUID)
        )
    if sum(len(v) for v in out.values()) > _MAX_CONTEXTS:
        raise SendError(
            f"{len(out)} storage classes: more presentation contexts than one "
            "association allows; send the files in smaller groups"
        )
    return out


def _send_group(  # noqa: PLR0917
    files: Sequence[Path],
    contexts: dict[str, set[str]],
    host: str,
    port: int,
    called_ae: str,
    calling_ae: str,
    sent: Callable[[str, int], None],
    timeout_s: float,
    retries: int,
) -> None:
    """Send ``files`` in order, on a new association after a lost one.

    Sending resumes at the first file without a response, at most ``retries`` times.
    """
    ae = AE(ae_title=calling_ae)
    ae.maximum_pdu_size = 0
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class, syntaxes in sorted(contexts.items()):
        for syntax in sorted(syntaxes):
            ae.add_requested_context(sop_class, syntax)
    position = [0]  # the next file to send
    for attempt in range(retries + 1):
        try:
            _send_run(ae, files, position, host, port, called_ae, sent, timeout_s)
            return
        except SendError as exc:
            if attempt == retries or position[0] == len(files):
                raise
            _LOG.warning("%s; resending from file %d", exc, position[0] + 1)


def _keep_responses(assoc: Association) -> None:
    """Stop the association's reactor from taking our C-STORE responses.

    pynetdicom 3.0.4's ``send_c_store`` pauses the reactor thread with an
    unsynchronised flag (``_is_paused``): when the reactor is held up just after its
    checkpoint (the GIL of a loaded machine), the sending thread goes on, the
    response arrives, the reactor's non-blocking ``dimse.get_msg`` takes it off the
    queue ("Received unexpected C-STORE service message") and ``send_c_store``
    waits out the DIMSE timeout: the "lost" responses of full demo runs. A sending
    SCU expects no request from the node, so the reactor's poll is answered empty;
    ``send_c_store``'s blocking read takes every response.
    """
    dimse = assoc.dimse
    take = dimse.get_msg

    def get_msg(block: bool = False) -> Any:
        return take(block=True) if block else (None, None)

    dimse.get_msg = get_msg  # type: ignore[method-assign]


def _send_run(  # noqa: PLR0917
    ae: AE,
    files: Sequence[Path],
    position: list[int],
    host: str,
    port: int,
    called_ae: str,
    sent: Callable[[str, int], None],
    timeout_s: float,
) -> None:
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        raise SendError(f"{called_ae}@{host}:{port} refused the association")
    _keep_responses(assoc)
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while position[0] < len(files):
            path = files[position[0]]
            if not assoc.is_established:
                raise SendError(f"{called_ae}@{host}:{port} aborted the association")
            status = assoc.send_c_store(path)
            answered = "Status" in status
            if not answered and not assoc.is_established:
                raise SendError(
                    f"{called_ae}@{host}:{port}: no response to the C-STORE of "
                    f"{path.name} within {timeout_s:g} s, or the node aborted the "
                    "association"
                )
            sent(str(path), int(status.Status) if answered else -1)
            position[0] += 1
    finally:
        if assoc.is_established:
            assoc.release()
        elif assoc.is_alive():
            assoc.abort()


def send_files(
    files: Sequence[Path],
    *,
    host: str,
    port: int,
    called_ae: str = "RTCOHORT",
    calling_ae: str = "RTCOHORT-SCU",
    associations: int = 1,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 60.0,
    retries: int = 0,
) -> SendSummary:
    """Send ``files`` (Part-10 DICOM) to ``host:port``.

    Parameters
    ----------
    files
        The files to send; with one association, in this order.
    host, port
        The receiving node.
    called_ae, calling_ae
        The node's AE title and ours.
    associations
        Associations in parallel, each sending a contiguous share of ``files``.
    progress
        ``progress(done, total)`` after each file.
    timeout_s
        How long to wait for the association, each response and any message
        (pynetdicom's ACSE, DIMSE and network timeouts).
    retries
        New associations an association's share of the files may use after a lost
        one (no response within ``timeout_s``, or aborted): sending resumes at the
        first file without a response (the receiver stores a repeated object once).

    Returns
    -------
    SendSummary
        Files stored and files refused with their status.

    Raises
    ------
    SendError
        When an association is rejected or aborted, or a response does not come
        within ``timeout_s``.

    Examples
    --------
    >>> send_files([], host="127.0.0.1", port=11112).sent
    0
    """
    summary = SendSummary()
    if not files:
        return summary
    contexts = _contexts(files)
    lock = threading.Lock()

    def sent(path: str, code: int) -> None:
        with lock:
            if code == 0:
                summary.sent += 1
            else:
                summary.failed.append((path, code))
            if progress is not None:
                progress(summary.sent + len(summary.failed), len(files))

    n = max(1, min(associations, len(files)))
    share = -(-len(files) // n)
    groups = [files[i : i + share] for i in range(0, len(files), share)]
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [
            pool.submit(_send_group, g, contexts, host, port, called_ae, calling_ae,
                        sent, timeout_s, retries)
            for g in groups
        ]  # fmt: skip
        for fut in futures:
            fut.result()
    return summary
