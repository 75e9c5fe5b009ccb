"""The FHIR R4 RESTful API at /api/v2/fhir (API.md §8): CapabilityStatement, read and search of
Patient, ImagingStudy, Endpoint and AuditEvent, Patient/$everything. A raw ASGI app (app.py)
over the record log's current resources and search index (records/) and the audit log
(accounts/); it never reads the studies index itself."""
