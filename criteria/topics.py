"""Card topic codes (../shared/contract.md 'Card topics'); more may be added, these keep their meaning."""
PT_DOCUMENTATION_MISSING = "pt-documentation-missing"
CONSERVATIVE_CARE_INSUFFICIENT = "conservative-care-insufficient"
LEVEL_UNSUPPORTED = "level-unsupported"
OSTEOTOMY_INDICATED = "osteotomy-indicated"
OSTEOTOMY_UNSUPPORTED = "osteotomy-unsupported"
SI_FUSION_UNSUPPORTED = "si-fusion-unsupported"
CRITERIA_MET = "criteria-met"
# Added by us (the contract allows more topics):
DATA_UNAVAILABLE = "data-unavailable"                # the EHR's FHIR server failed for part of the chart
LEVELS_NOT_DOCUMENTED = "levels-not-documented"      # a fusion or decompression order names no levels
PELVIC_FIXATION_UNSUPPORTED = "pelvic-fixation-unsupported"
EXPLORATION_BUNDLED = "exploration-bundled"          # 22830 beside another spine procedure in the region
INPATIENT_UNSUPPORTED = "inpatient-unsupported"

ALL = frozenset({
    PT_DOCUMENTATION_MISSING, CONSERVATIVE_CARE_INSUFFICIENT, LEVEL_UNSUPPORTED, OSTEOTOMY_INDICATED,
    OSTEOTOMY_UNSUPPORTED, SI_FUSION_UNSUPPORTED, CRITERIA_MET, DATA_UNAVAILABLE, LEVELS_NOT_DOCUMENTED,
    PELVIC_FIXATION_UNSUPPORTED, EXPLORATION_BUNDLED, INPATIENT_UNSUPPORTED,
})
# Issue 13: the patient factors and documentation payers check.
NICOTINE_USE = "nicotine-use"
GLYCEMIC_CONTROL = "glycemic-control"
CLINICAL_CORRELATION_MISSING = "clinical-correlation-missing"
FUNCTIONAL_IMPAIRMENT_NOT_DOCUMENTED = "functional-impairment-not-documented"
IMAGING_OUTDATED = "imaging-outdated"
PATIENT_FACTORS = frozenset({NICOTINE_USE, GLYCEMIC_CONTROL, CLINICAL_CORRELATION_MISSING,
                             FUNCTIONAL_IMPAIRMENT_NOT_DOCUMENTED, IMAGING_OUTDATED})
ALL = ALL | PATIENT_FACTORS
