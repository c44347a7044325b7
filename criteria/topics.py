"""Card topic codes (../shared/contract.md 'Card topics'); more may be added, these keep their meaning."""
PT_DOCUMENTATION_MISSING = "pt-documentation-missing"
CONSERVATIVE_CARE_INSUFFICIENT = "conservative-care-insufficient"
LEVEL_UNSUPPORTED = "level-unsupported"
OSTEOTOMY_INDICATED = "osteotomy-indicated"
OSTEOTOMY_UNSUPPORTED = "osteotomy-unsupported"
SI_FUSION_UNSUPPORTED = "si-fusion-unsupported"
CRITERIA_MET = "criteria-met"
# Added by us: what the service could not check because the EHR's FHIR server failed.
DATA_UNAVAILABLE = "data-unavailable"

ALL = frozenset({
    PT_DOCUMENTATION_MISSING, CONSERVATIVE_CARE_INSUFFICIENT, LEVEL_UNSUPPORTED, OSTEOTOMY_INDICATED,
    OSTEOTOMY_UNSUPPORTED, SI_FUSION_UNSUPPORTED, CRITERIA_MET, DATA_UNAVAILABLE,
})
