"""Pseudonymisation per DICOM PS3.15.

Centre keys, the patient identity, the rule table, the policy, the byte codec
and audit copies.
"""

__all__: list[str] = []
