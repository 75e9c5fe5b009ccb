"""Indexing: stored instances into Patient / Study / Series / Instance rows, and the FHIR
records those rows make (API.md §2, docs/indexing.md)."""
