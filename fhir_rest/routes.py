"""The routes under /api/v2/fhir, written from the declarations (capabilities.py): a resource
type gets ``GET [type]/[id]`` when it declares read, ``GET [type]`` and ``POST [type]/_search``
when it declares search-type, ``GET [type]/[id]/$op`` per operation. The app dispatches on
this table and the OpenAPI document is written from it (openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from core.route_table import routes_match
from fhir_rest import interactions
from fhir_rest.capabilities import READ, RESOURCES, SEARCH
from fhir_rest.request import Answer, FhirRequest

Handler = Callable[[FhirRequest], Answer]
_ID = r"[^/]+"
OPERATIONS: dict[str, Handler] = {"everything": interactions.everything}  # by Operation.name


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the path under /api/v2/fhir
    handler: Handler
    summary: str
    resource: str | None = None  # the resource type it serves
    kind: str = "read"  # read, search, operation, capabilities: for the OpenAPI document

    @cached_property
    def regex(self) -> re.Pattern[str]:
        pattern = re.escape(self.template).replace(r"\{id\}", f"(?P<id>{_ID})")
        return re.compile(pattern)


def _routes() -> list[Route]:
    routes = [Route("GET", "/metadata", interactions.capabilities, "CapabilityStatement", kind="capabilities")]
    for name, resource in RESOURCES.items():
        if READ in resource.interactions:
            routes.append(Route("GET", f"/{name}/{{id}}", interactions.read, f"Read a {name}", name))
        if SEARCH in resource.interactions:
            routes.append(Route("GET", f"/{name}", interactions.search, f"Search {name}", name, "search"))
            routes.append(
                Route("POST", f"/{name}/_search", interactions.search, f"Search {name} (form)", name, "search")
            )
        for op in resource.operations:
            routes.append(Route("GET", f"/{name}/{{id}}/${op.name}", OPERATIONS[op.name],
                                f"{name} ${op.name}", name, "operation"))  # fmt: skip
    return routes


ROUTES = _routes()


def route_match(path: str) -> tuple[list[Route], dict[str, str]]:
    """The routes whose template matches ``path`` (one per method), and its parameters (type, id)."""
    found, params = routes_match(ROUTES, path)
    return found, {"type": found[-1].resource or "", **params} if found else params
