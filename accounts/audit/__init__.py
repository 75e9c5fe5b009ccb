"""The tamper-evident audit log (API.md §5, docs/audit.md): appending and verifying entries
(log.py), their FHIR AuditEvent form (fhir.py), `GET /audit-events` (views.py) and the
read-only dashboard (admin.py)."""
