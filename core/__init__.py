"""Plumbing every app uses and none owns: ASGI types and header helpers, the request-id gateway,
the one API error type and its problem+json rendering, JSON logs, task dispatch, compiled
lookups, the clock, shared counters and FHIR media types.

Imports no app and not prizmed (import-linter holds that); settings come from django.conf.
"""
