"""What the chart's resources point at on the same FHIR server: the Observations a DiagnosticReport
lists in `result`, the Medication a `medicationReference` names, and the Binary behind an
attachment `url` (a report body or a note kept outside the resource).

Read with the request's token, from the request's fhirServer only: a url on another origin or
outside its base path is never fetched (the token would leave the server the EHR named), and is
reported as evidence not read. Each read is bounded by the client's size cap and timeouts; at most
MAX_READS reads per call, the rest reported. A Binary read is folded into a copy of the resource
that points at it (attachment `data` and `contentType`), so the mappers read the text as if it had
been sent inline.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .fhir_client import FhirClient, FhirFetchError

MAX_READS = 200


@dataclass(frozen=True)
class Linked:
    resources: list[dict]              # the chart in its order, Binary bodies folded in, then the linked resources read
    unavailable: tuple[str, ...] = ()  # what was pointed at but could not be read, in words


@dataclass(frozen=True)
class _Want:
    url: str | None           # absolute url to read; None: not readable (why says why)
    label: str                # "the attachment content[0] of DocumentReference/n1"
    owner: int | None = None  # index of the resource to fold a Binary into
    path: tuple = ()          # ("content", 0, "attachment") / ("presentedForm", 1)
    why: str = ""


def _ref(resource: dict) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _attachments(resource: dict) -> Iterable[tuple[tuple, dict]]:
    rtype = resource.get("resourceType")
    if rtype == "DocumentReference":
        for i, content in enumerate(resource.get("content") or []):
            if isinstance(content, dict) and isinstance(content.get("attachment"), dict):
                yield ("content", i, "attachment"), content["attachment"]
    elif rtype == "DiagnosticReport":
        for i, form in enumerate(resource.get("presentedForm") or []):
            if isinstance(form, dict):
                yield ("presentedForm", i), form


def _path_label(path: tuple) -> str:
    return "content[{}]".format(path[1]) if path[0] == "content" else "presentedForm[{}]".format(path[1])


def _key(reference: str) -> str:
    """"Observation/o1" of "Observation/o1", "https://ehr/fhir/Observation/o1" or ".../o1/_history/2"."""
    return "/".join(reference.split("/_history")[0].rstrip("/").split("/")[-2:])


def _resolve(url: str, base: str | None) -> tuple[str | None, str]:
    """(absolute url on the request's FHIR server, "") or (None, why not)."""
    if not base:
        return None, "the request has no fhirServer to read it from"
    if url.startswith(("http://", "https://")):
        if url.startswith(base + "/"):
            return url, ""
        return None, "it is not on the request's FHIR server, and the token is sent nowhere else"
    if url.startswith(("urn:", "#", "data:")) or ":" in url.split("/")[0]:
        return None, f"{url.split(':')[0]}: urls are not read"
    return f"{base}/{url.lstrip('/')}", ""


def _wanted(resources: list[dict], base: str | None) -> list[_Want]:
    present = {_ref(r) for r in resources}
    wants: list[_Want] = []
    for index, resource in enumerate(resources):
        rtype = resource.get("resourceType")
        if rtype == "DiagnosticReport":
            for item in resource.get("result") or []:
                ref = item.get("reference") if isinstance(item, dict) else None
                if isinstance(ref, str) and not ref.startswith("#") and _key(ref) not in present:
                    url, why = _resolve(ref, base)
                    wants.append(_Want(url, f"the result {ref} of {_ref(resource)}", why=why))
        if rtype in ("MedicationRequest", "MedicationStatement"):
            ref = (resource.get("medicationReference") or {}).get("reference") \
                if isinstance(resource.get("medicationReference"), dict) else None
            if isinstance(ref, str) and not ref.startswith("#") and _key(ref) not in present:
                url, why = _resolve(ref, base)
                wants.append(_Want(url, f"the medication {ref} of {_ref(resource)}", why=why))
        for path, attachment in _attachments(resource):
            url = attachment.get("url")
            if isinstance(url, str) and url and not attachment.get("data"):
                target, why = _resolve(url, base)
                title = attachment.get("title")
                named = f" (“{title}”)" if isinstance(title, str) and title else ""
                wants.append(_Want(target, f"the attachment {_path_label(path)}{named} of {_ref(resource)}",
                                   index, path, why))
    return wants


def follow_links(resources: list[dict], *, fhir_server: str | None, access_token: str | None,
                 client: FhirClient | None = None, budget=None) -> Linked:
    base = fhir_server.rstrip("/") if fhir_server else None
    resources = list(resources)
    wants = _wanted(resources, base)
    if not wants:
        return Linked(resources)
    unavailable = [f"{w.label} was not read: {w.why}" for w in wants if w.url is None]
    readable = [w for w in wants if w.url is not None]
    if len(readable) > MAX_READS:
        unavailable.append(f"{len(readable) - MAX_READS} linked results, medications or attachments were not read "
                           f"(at most {MAX_READS} per call)")
        readable = readable[:MAX_READS]
    if not readable:
        return Linked(resources, tuple(unavailable))
    copied: set[int] = set()
    own_client = client is None
    client = client or FhirClient()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(client.max_workers, len(readable))),
                                thread_name_prefix="fhir-linked") as pool:
            limits = {"base": base, "budget": budget} if budget is not None else {"base": base}
            futures = [(w, pool.submit(client.read, w.url, access_token=access_token, **limits)) for w in readable]
            for want, future in futures:
                try:
                    fetched = future.result()
                except FhirFetchError as err:
                    unavailable.append(f"{want.label} could not be read: the FHIR server {err.reason}")
                    continue
                if want.owner is None:
                    resources.append(fetched)
                    continue
                problem = _fold_binary(resources, want, fetched, copied)
                if problem:
                    unavailable.append(f"{want.label} could not be read: {problem}")
    finally:
        if own_client:
            client.close()
    return Linked(resources, tuple(unavailable))


def _fold_binary(resources: list[dict], want: _Want, binary: dict, copied: set[int]) -> str | None:
    """Put the Binary's data into the attachment, on a copy: the prefetch's dicts stay as sent."""
    if binary.get("resourceType") != "Binary" or not isinstance(binary.get("data"), str):
        return f"the url answered a {binary.get('resourceType')} without data where a Binary was expected"
    if want.owner not in copied:
        resources[want.owner] = copy.deepcopy(resources[want.owner])
        copied.add(want.owner)
    attachment = resources[want.owner]
    for step in want.path:
        attachment = attachment[step]
    attachment["data"] = binary["data"]
    if not attachment.get("contentType") and isinstance(binary.get("contentType"), str):
        attachment["contentType"] = binary["contentType"]
    return None
