"""Reading clinical text the way a reviewer does: sections, sentences, mentions with their
assertion (present, negated, possible, hypothetical, historical, family, counselling),
measurements and dates in prose. Vocabulary lives in terminology/data/text/ and is compiled by
terminology.phrases, the one phrase compiler."""
from .document import SENTENCE_ASSERTIONS, Document, SentenceMemo, assertion_of, clause_bounds, document, fold_text, mask_text, once
from .rules import ASSERTIONS

__all__ = ["ASSERTIONS", "Document", "SENTENCE_ASSERTIONS", "SentenceMemo", "assertion_of", "clause_bounds", "document", "fold_text", "mask_text", "once"]
