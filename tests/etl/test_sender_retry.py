"""The sender resends on a new association after a C-STORE without a response."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, evt

from etl.arrive.sender import _keep_responses, send_files
from etl.phantom.spec import spec_from_options
from etl.phantom.write import write_phantom


def test_lost_response_is_resent_on_a_new_association(tmp_path: Path) -> None:
    spec = spec_from_options("sphere", 10, dose_grid_mm=2, contour_spacing_mm=2)
    write_phantom(tmp_path / "set", spec, seed=1)
    files = sorted((tmp_path / "set").glob("*.dcm"))
    stored: list[str] = []
    stalled = threading.Event()

    def on_store(event: Any) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        if len(stored) == 2 and not stalled.is_set():  # the third: answer too late
            stalled.set()
            time.sleep(3.0)
        stored.append(uid)
        return 0x0000

    scp = AE(ae_title="RTCOHORT")
    scp.supported_contexts = AllStoragePresentationContexts
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        port = int(server.server_address[1])
        done = send_files(files, host="127.0.0.1", port=port, timeout_s=1.0, retries=2)
    finally:
        server.shutdown()
    assert stalled.is_set()
    assert done.sent == len(files) and not done.failed
    # every object arrived (the late answer, if it came, repeats one of them)
    assert len(set(stored)) == len(files)


def test_the_reactor_poll_leaves_responses_to_send_c_store() -> None:
    # pynetdicom 3.0.4's send_c_store may go on while its reactor is still past the
    # pause checkpoint; the reactor's non-blocking poll then took the C-STORE
    # response and the sender waited out the DIMSE timeout (the lost responses of
    # full demo runs). The sender's associations answer that poll empty.
    scp = AE(ae_title="RTCOHORT")
    scp.supported_contexts = AllStoragePresentationContexts
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        ae = AE(ae_title="DEMO-TPS")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", int(server.server_address[1]))
        assert assoc.is_established
        _keep_responses(assoc)
        response = (1, object())
        assoc.dimse.msg_queue.put(response)  # type: ignore[arg-type]
        assert assoc.dimse.get_msg(block=False) == (None, None)  # the reactor's poll
        assert assoc.dimse.get_msg(block=True) == response  # send_c_store's read
        assoc.release()
    finally:
        server.shutdown()
