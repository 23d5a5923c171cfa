"""Server-side drafts of PROM forms: a patient's answers kept until they submit.

One private file per invitation (``<data_dir>/prom-drafts/<invitation_id>.json``,
folder 0700, file 0600, written atomically) holding the answers only:
``{"answers": {"1": 2, ...}}``. No name, no pseudonym, no token. The form page writes it
on every answer and deletes it when the questionnaire is stored or the link turns out
to be used, expired or closed. A file (not a table) keeps the schema untouched; the
drafts folder sits in the data folder, which is private as a whole.

Examples
--------
>>> import tempfile
>>> store = DraftStore(Path(tempfile.mkdtemp()))
>>> store.save(7, {1: 2, 2: 3})
>>> store.load(7)
{1: 2, 2: 3}
>>> store.delete(7); store.load(7)
{}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from omop.private_files import write_private

__all__ = ["DraftStore"]

_LOG = logging.getLogger(__name__)


class DraftStore:
    """Drafts of PROM answers by invitation id.

    Parameters
    ----------
    folder
        Where the draft files live (created 0700 on first save).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, invitation_id: int) -> Path:
        return self.folder / f"{int(invitation_id)}.json"

    def load(self, invitation_id: int) -> dict[int, int]:
        """Return the saved answers ``{item: answer}`` (empty when there are none).

        A damaged draft is logged and treated as empty (the patient answers again).
        """
        path = self._path(invitation_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {int(k): int(v) for k, v in dict(data["answers"]).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _LOG.warning("draft %s unreadable (%s); starting empty", path.name, exc)
            return {}

    def save(self, invitation_id: int, answers: Mapping[int, int]) -> None:
        """Replace the draft of ``invitation_id`` with ``answers``."""
        body = {"answers": {str(k): int(v) for k, v in sorted(answers.items())}}
        write_private(self._path(invitation_id), json.dumps(body).encode("utf-8"))

    def delete(self, invitation_id: int) -> None:
        """Remove the draft (nothing happens when there is none)."""
        self._path(invitation_id).unlink(missing_ok=True)
