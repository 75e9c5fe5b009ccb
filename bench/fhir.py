"""FHIR REST API benchmark (PostgreSQL, one uvicorn process).

    .venv/bin/python -m bench.fhir [--instances 100000] [--per-study 10] [--requests 200]

Seeds one organization with --instances instances (--per-study per study, one series each,
five studies per patient) plus one patient with 50 studies, with their current resources and
search index rows as record_append leaves them; then times, one request at a time over HTTP:
1. Patient search by identifier (system|value), a different patient each request;
2. ImagingStudy search by patient, a different patient each request;
3. Patient/$everything of the patient with 50 studies (_count=100: one page).
p50/p95 of the whole round trip (client in this process, on the same cores).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import httpx

from bench import common

BASE = "/api/v2/fhir"
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def seed(instances: int, per_study: int) -> tuple[list[str], list[str], str]:
    """Rows, resources and search values; returns Patient IDs, their FHIR ids, the big patient's."""
    from datetime import date

    from django.db import connection, transaction

    from accounts.services import organization_ensure
    from records.models import EventCounter, RecordResource, RecordSearchValue
    from records.search import search_values
    from studies.index import fhir
    from studies.models import Instance, Patient, Series, Study

    org = organization_ensure(slug="bench-fhir", plan_slug="enterprise")
    studies_n = instances // per_study
    patient_ids = [f"P{n}" for n in range(studies_n // 5)] + ["BIG"]
    plan = [(f"P{n // 5}", f"1.2.826.0.2.{n}") for n in range(studies_n)]
    plan += [("BIG", f"1.2.826.0.3.{n}") for n in range(50)]
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            [Patient(organization=org, patient_id=pid, name=f"Doe^Jane{pid}", birth_date=date(1980, 1, 2), sex="F")
             for pid in patient_ids], batch_size=5000)  # fmt: skip
        by_id = {p.patient_id: p for p in patients}
        studies = Study.objects.bulk_create(
            [Study(organization=org, patient=by_id[pid], study_uid=uid, study_date=date(2024, 1, 2), modalities=["CT"],
                   series_count=1, instance_count=per_study, accession_number=uid[-16:]) for pid, uid in plan],
            batch_size=5000)  # fmt: skip
        series = Series.objects.bulk_create(
            [Series(study=s, series_uid=f"{s.study_uid}.1", number=1, modality="CT", instance_count=per_study)
             for s in studies], batch_size=5000)  # fmt: skip
        Instance.objects.bulk_create(
            (Instance(organization=org, series=se, sop_uid=f"{se.series_uid}.{i}", number=i, sop_class_uid=SOP_CLASS,
                      transfer_syntax_uid=SOP_CLASS, object_key="k", size=1, sha256="0")
             for se in series for i in range(1, per_study + 1)), batch_size=5000)  # fmt: skip
        rows, seq = [], 0
        for p in patients:
            seq += 1
            resource = fhir.patient_resource(
                fhir.PatientRow(org.pk, org.slug, p.patient_id, "", p.name, p.birth_date, "F")
            )
            rows.append(RecordResource(organization=org, kind="Patient", key=p.patient_id, patient_id=p.patient_id,
                                       seq=seq, resource=resource))  # fmt: skip
        for s in studies:
            seq += 1
            members = [fhir.InstanceRow(f"{s.study_uid}.1.{i}", SOP_CLASS, i) for i in range(1, per_study + 1)]
            resource = fhir.imaging_study_resource(fhir.StudyRow(
                organization_id=org.pk, patient_id=s.patient.patient_id, patient_name=s.patient.name,
                study_uid=s.study_uid, study_date=s.study_date, study_time=None, accession_number=s.accession_number,
                description="", referring_physician="", modalities=["CT"], series_count=1, instance_count=per_study,
                series=[fhir.SeriesRow(f"{s.study_uid}.1", 1, "CT", "", "", per_study, members)]))  # fmt: skip
            rows.append(RecordResource(organization=org, kind="ImagingStudy", key=s.study_uid, seq=seq,
                                       patient_id=s.patient.patient_id, study_uid=s.study_uid,
                                       resource=resource))  # fmt: skip
        RecordResource.objects.bulk_create(rows, batch_size=2000)
        RecordSearchValue.objects.bulk_create(
            (RecordSearchValue(organization=org, resource=row, kind=row.kind, param=name, system=v.system,
                               value=v.value, low=v.low, high=v.high)
             for row in rows for name, v in search_values(row.kind, row.resource)), batch_size=5000)  # fmt: skip
        EventCounter.objects.create(organization=org, last_seq=seq)
    with connection.cursor() as cursor:  # what autovacuum does after a bulk load
        cursor.execute("ANALYZE")
    fhir_ids = [fhir.patient_resource_id(org.pk, pid) for pid in patient_ids]
    return patient_ids[:-1], fhir_ids[:-1], fhir_ids[-1]


def timed(client: httpx.Client, urls: list[str], check: int) -> tuple[float, float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == check, (url, response.json()["total"])
    return common.percentiles(samples)


def in_process(patient_ids: list[str], fhir_ids: list[str], rounds: int) -> tuple[tuple[float, float], ...]:
    """The database part alone: parse, count and page query of each search, in this process."""
    from accounts.models import Organization
    from fhir_rest.capabilities import RESOURCES
    from fhir_rest.query import search_query_parse
    from records.search import resources_search, resources_search_count

    org = Organization.objects.get(slug="bench-fhir")
    rng = random.Random(11)
    system = "urn:prizmed:org:bench-fhir:patient-id"
    cases = [("Patient", "identifier", lambda: f"{system}|{rng.choice(patient_ids)}"),
             ("ImagingStudy", "patient", lambda: rng.choice(fhir_ids))]  # fmt: skip
    results = []
    for kind, name, value in cases:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            query = search_query_parse(RESOURCES[kind], [(name, value())])
            resources_search_count(organization_id=org.pk, kind=kind, criteria=query.criteria)
            resources_search(organization_id=org.pk, kind=kind, criteria=query.criteria, after_id=0, limit=51)
            samples.append(time.perf_counter() - started)
        results.append(common.percentiles(samples))
    return tuple(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--per-study", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    s = common.setup(services=True)
    s.env["PRIZMED_PUBLIC_URL"] = ""
    os.environ.update(s.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "prizmed.settings"
    import django

    django.setup()
    started = time.perf_counter()
    patient_ids, fhir_ids, big = seed(args.instances, args.per_study)
    seeded = time.perf_counter() - started
    token = s.issue_key("bench-fhir")
    server = common.start_server(s)
    rng = random.Random(7)
    try:
        with httpx.Client(base_url=server.url + BASE, headers={"Authorization": f"Bearer {token}"}) as client:
            system = "urn:prizmed:org:bench-fhir:patient-id"
            for _ in range(20):  # warm-up: connections, plans
                client.get(f"/Patient?identifier={system}|{rng.choice(patient_ids)}")
            by_identifier = timed(
                client, [f"/Patient?identifier={system}|{rng.choice(patient_ids)}" for _ in range(args.requests)], 1
            )
            by_patient = timed(
                client, [f"/ImagingStudy?patient={rng.choice(fhir_ids)}" for _ in range(args.requests)], 5
            )
            everything = timed(client, [f"/Patient/{big}/$everything?_count=100"] * 30, 51)
    finally:
        server.stop()
    db_identifier, db_patient = in_process(patient_ids, fhir_ids, args.requests)
    print(f"seeded {args.instances} instances ({args.instances // args.per_study + 50} studies, "
          f"{len(patient_ids) + 1} patients) in {seeded:.1f} s")  # fmt: skip
    print("| measurement | p50 | p95 |\n|---|---|---|")
    print(f"| Patient?identifier=system\\|value | {by_identifier[0]:.1f} ms | {by_identifier[1]:.1f} ms |")
    print(f"| ImagingStudy?patient=<id> (5 studies) | {by_patient[0]:.1f} ms | {by_patient[1]:.1f} ms |")
    print(f"| Patient/<id>/$everything (50 studies) | {everything[0]:.1f} ms | {everything[1]:.1f} ms |")
    print(
        f"| in-process: Patient by identifier (count + page) | {db_identifier[0]:.2f} ms | {db_identifier[1]:.2f} ms |"
    )
    print(f"| in-process: ImagingStudy by patient (count + page) | {db_patient[0]:.2f} ms | {db_patient[1]:.2f} ms |")


if __name__ == "__main__":
    main()
