"""The centre-side contact register: name, e-mail, phone, encrypted per person.

Each entry is AES-256-GCM encrypted under a sub-key of the centre key
(``CentreKey.derive("contact-register/v1")``) with the pseudonym as associated data,
so a row copied onto another person does not decrypt. The register also holds the
patient's date offset, so that centre-side schedules can place pseudonymised dates in
real time. Never exported; erased with the person.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._time import utcnow
from cohort.errors import ContactKeyError
from etl.deid.keys import CentreKey
from omop.cdm import Person
from omop.cohort_tables import Contact

__all__ = ["ContactDetails", "date_offsets", "read_contacts", "store_contact"]

_LABEL = "contact-register/v1"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class ContactDetails:
    """What the register holds of one patient."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    date_offset_days: int | None = None

    def merged(self, newer: ContactDetails) -> ContactDetails:
        """Return these details with every field ``newer`` sets replaced."""
        values = asdict(self)
        values.update({k: v for k, v in asdict(newer).items() if v is not None})
        return ContactDetails(**values)


def _cipher(key: CentreKey) -> AESGCM:
    return AESGCM(key.derive(_LABEL))


def _decrypt(key: CentreKey, row: Contact, pseudonym: str) -> ContactDetails:
    if row.key_fingerprint != key.fingerprint:
        raise ContactKeyError(
            f"contact of {pseudonym} was encrypted with key {row.key_fingerprint}, "
            f"not {key.fingerprint}"
        )
    try:
        plain = _cipher(key).decrypt(row.nonce, row.ciphertext, pseudonym.encode())
    except InvalidTag:
        raise ContactKeyError(f"contact of {pseudonym} does not decrypt") from None
    return ContactDetails(**json.loads(plain))


def store_contact(
    session: Session, key: CentreKey, person: Person, details: ContactDetails
) -> None:
    """Create or update a person's entry (fields left None keep their value)."""
    pseudonym = str(person.person_source_value)
    row = session.get(Contact, person.person_id)
    if row is not None:
        details = _decrypt(key, row, pseudonym).merged(details)
    nonce = os.urandom(_NONCE_BYTES)
    blob = _cipher(key).encrypt(
        nonce, json.dumps(asdict(details)).encode(), pseudonym.encode()
    )
    if row is None:
        assert person.care_site_id is not None
        row = Contact(person_id=person.person_id, care_site_id=person.care_site_id)
        session.add(row)
    row.key_fingerprint = key.fingerprint
    row.nonce = nonce
    row.ciphertext = blob
    row.updated_at = utcnow()
    session.flush()


def read_contacts(
    session: Session,
    key: CentreKey,
    care_site_id: int,
    person_ids: Iterable[int] | None = None,
) -> dict[int, ContactDetails]:
    """Decrypt the entries of a centre's patients: ``{person_id: details}``.

    Raises
    ------
    ContactKeyError
        When an entry was written with another key.
    """
    query = (
        select(Contact, Person.person_source_value)
        .join(Person, Person.person_id == Contact.person_id)
        .where(Contact.care_site_id == care_site_id)
    )
    if person_ids is not None:
        query = query.where(Contact.person_id.in_(list(person_ids)))
    return {
        row.person_id: _decrypt(key, row, str(pseudonym))
        for row, pseudonym in session.execute(query).all()
    }


def date_offsets(session: Session, key: CentreKey, care_site_id: int) -> dict[int, int]:
    """Return ``{person_id: date offset in days}`` of a centre's patients."""
    return {
        pid: d.date_offset_days
        for pid, d in read_contacts(session, key, care_site_id).items()
        if d.date_offset_days is not None
    }
