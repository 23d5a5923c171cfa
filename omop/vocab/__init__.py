"""Vocabulary: our own concepts, their stable ids, the seed and the Athena loader.

Modules: :mod:`omop.vocab.sources` (what we define), :mod:`omop.vocab.registry`
(append-only ids), :mod:`omop.vocab.seed`, :mod:`omop.vocab.lookup`,
:mod:`omop.vocab.athena` (``rtcohort vocab load-athena``).
"""

from __future__ import annotations

__all__: list[str] = []
