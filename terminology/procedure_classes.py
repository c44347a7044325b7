"""The procedure classes every part of the service speaks of, as one enum, and the groups the
criteria judge together. The CPT catalogue (data/cpt_catalogue.json) assigns each code one class;
`judged_as` there marks codes judged by a narrower indication than their class (a discectomy is
billed in the decompression family but indicated by a disc herniation, not by stenosis)."""
from __future__ import annotations

from enum import StrEnum


class ProcedureClass(StrEnum):
    FUSION = "fusion"
    DEFORMITY_FUSION = "deformity_fusion"
    EXPLORATION = "exploration"
    INSTRUMENTATION = "instrumentation"
    PELVIC_FIXATION = "pelvic_fixation"
    DECOMPRESSION = "decompression"
    OSTEOTOMY_POSTERIOR = "osteotomy_posterior"
    OSTEOTOMY_THREE_COLUMN = "osteotomy_three_column"
    OSTEOTOMY_ANTERIOR = "osteotomy_anterior"
    SI_FUSION = "si_fusion"
    GRAFT = "graft"


FUSIONS = frozenset({ProcedureClass.FUSION, ProcedureClass.DEFORMITY_FUSION})
OSTEOTOMIES = frozenset({ProcedureClass.OSTEOTOMY_POSTERIOR, ProcedureClass.OSTEOTOMY_THREE_COLUMN,
                         ProcedureClass.OSTEOTOMY_ANTERIOR})
# Narrower indications some codes are judged by (cpt_catalogue.json "judged_as").
DISCECTOMY = "discectomy"
JUDGED_AS = frozenset({DISCECTOMY})
