"""Canonical FHIR code-system URIs and a resolver for the aliases seen in charts and rule files."""

from __future__ import annotations

from typing import Final

ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
CPT: Final = "http://www.ama-assn.org/go/cpt"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
HCPCS: Final = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

CANONICAL: Final = frozenset({ICD10CM, SNOMED, LOINC, CPT, RXNORM, HCPCS})

_OIDS: Final = {
    "2.16.840.1.113883.6.90": ICD10CM,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.12": CPT,
    "2.16.840.1.113883.6.88": RXNORM,
    "2.16.840.1.113883.6.285": HCPCS,
}

_ALIASES: Final = {
    "icd10cm": ICD10CM,
    "icd-10-cm": ICD10CM,
    "icd10-cm": ICD10CM,
    "snomed": SNOMED,
    "snomedct": SNOMED,
    "snomed-ct": SNOMED,
    "sct": SNOMED,
    "loinc": LOINC,
    "cpt": CPT,
    "rxnorm": RXNORM,
    "hcpcs": HCPCS,
    # CMS pages are served over both schemes and charts carry either.
    "http://www.cms.gov/medicare/coding/hcpcsreleasecodesets": HCPCS,
}

# Keys are lower-cased: EHRs are inconsistent about case in host names and OID prefixes.
_LOOKUP: Final[dict[str, str]] = {
    **{uri.lower(): uri for uri in CANONICAL},
    **{oid: uri for oid, uri in _OIDS.items()},
    **{f"urn:oid:{oid}": uri for oid, uri in _OIDS.items()},
    **_ALIASES,
}


class UnknownCodeSystem(KeyError):
    """The alias or URI names no code system this service understands."""


def resolve_system(alias_or_uri: str) -> str:
    """Return the canonical URI for a known alias, URI or OID; raise UnknownCodeSystem otherwise."""
    key = alias_or_uri.strip().lower() if isinstance(alias_or_uri, str) else None
    if key is not None:
        key = key.rstrip("/")
        if key in _LOOKUP:
            return _LOOKUP[key]
    raise UnknownCodeSystem(alias_or_uri)
