"""The text of clinical documents: DocumentReference.content[].attachment and
DiagnosticReport.presentedForm, as plain text with its line breaks kept.

Read: text/plain; text/html and XHTML through the standard library's HTML parser (table rows and
list items become lines, headings stand on their own line, script/style/head are dropped, nothing
is ever run); application/pdf with a text layer through pypdf. The charset is the attachment's
(`contentType: text/html; charset=windows-1252`), else UTF-8 when the bytes are UTF-8, else the
one charset-normalizer detects. An attachment that cannot be read (a scanned image, an image-only
PDF, broken base64, over the cap, an unknown type, an encrypted PDF) is not dropped: it becomes an
Unread entry that reaches the answer as evidence not read (`Facts.unavailable`).

Each attachment is decoded once per chart: `read_chart` (called by build_facts) decodes all of
them under the chart cap and keeps the texts in a context variable for the duration of that
chart, where `narrative_texts` finds them; `forget_chart` empties it. Outside a chart (a mapper
called on one resource) the attachment is decoded on the spot, under the document cap.
"""
from __future__ import annotations

import base64
import binascii
import contextvars
import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from .resources import array, obj, reference

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 5_000_000    # decoded bytes of one attachment; a 50 MB scan is not read
MAX_DOCUMENT_CHARS = 200_000      # text kept of one document (~60 pages of notes)
MAX_CHART_CHARS = 20_000_000      # text read from attachments of one chart, all together
MAX_PDF_PAGES = 100


@dataclass(frozen=True)
class AttachmentText:
    source: str                   # where in the resource: "content[0].attachment", "presentedForm[1]"
    text: str
    blocks: tuple[str, ...] = ()  # the text as the readers take it (document_blocks), made once

    @classmethod
    def of(cls, source: str, text: str) -> "AttachmentText":
        return cls(source, text, document_blocks(text))


# A section heading: "IMPRESSION:", "FINDINGS", "Assessment and Plan:" at the start of a line.
_HEADING = re.compile(r"^(?:[A-Z][A-Z0-9 /&(),'-]{2,48}:?|[A-Z][A-Za-z /&'-]{2,40}:)(?=\s|$)")
MAX_BLOCK_CHARS = 2_000


def document_blocks(text: str) -> tuple[str, ...]:
    """The document as the readers take it: one block per section (a heading line and the lines
    under it, line breaks kept), a long section cut at line ends into blocks of at most
    MAX_BLOCK_CHARS. A reader's clause and sentence work then stays within a section, so a long
    note costs what its sections cost, not the square of its length."""
    blocks: list[list[str]] = [[]]
    size = 0
    for line in text.splitlines():
        starts_section = bool(_HEADING.match(line)) and blocks[-1]
        if starts_section or (blocks[-1] and size + len(line) > MAX_BLOCK_CHARS):
            blocks.append([])
            size = 0
        blocks[-1].append(line)
        size += len(line) + 1
    return tuple("\n".join(b) for b in blocks if b)


@dataclass(frozen=True)
class Unread:
    reference: str                # "DocumentReference/n1"
    source: str
    title: str
    why: str

    def render(self) -> str:
        named = f" (“{self.title}”)" if self.title else ""
        return f"the {self.source}{named} of {self.reference} could not be read: {self.why}"


class CannotRead(ValueError):
    """Why an attachment's bytes hold no text the service can read."""


# -- where attachments are -------------------------------------------------------------------
def attachments_of(resource: dict) -> list[tuple[str, dict]]:
    rtype = resource.get("resourceType")
    if rtype == "DocumentReference":
        return [(f"content[{i}].attachment", obj(c).get("attachment")) for i, c in enumerate(array(resource.get("content")))
                if isinstance(obj(c).get("attachment"), dict)]
    if rtype == "DiagnosticReport":
        return [(f"presentedForm[{i}]", form) for i, form in enumerate(array(resource.get("presentedForm")))
                if isinstance(form, dict)]
    return []


_PREFERRED = ("text/plain", "text/html", "application/xhtml+xml", "application/pdf")


def _ranked(attachments: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Renditions of one document (the same note as text and PDF), the cheapest to read first."""
    def rank(item):
        media = _media_type(item[1])
        return _PREFERRED.index(media) if media in _PREFERRED else len(_PREFERRED)
    return sorted(attachments, key=rank)


# -- decoding --------------------------------------------------------------------------------
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_\-:.]+)", re.IGNORECASE)


def _media_type(attachment: dict) -> str:
    value = attachment.get("contentType")
    return value.split(";")[0].strip().lower() if isinstance(value, str) else ""


def _declared_charset(attachment: dict) -> str | None:
    value = attachment.get("contentType")
    match = _CHARSET.search(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _bytes(attachment: dict, cap: int) -> bytes:
    data = attachment.get("data")
    if not isinstance(data, str) or not data:
        raise CannotRead("it holds neither data nor a url")
    size = attachment.get("size")
    if isinstance(size, int) and size > cap or len(data) > (cap * 4) // 3 + 4:
        raise CannotRead(f"it is larger than {cap // 1_000_000} MB, the most read of one document")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CannotRead("its data is not valid base64") from None


def _text_of_bytes(raw: bytes, charset: str | None) -> str:
    if charset and charset.lower().replace("_", "-").startswith(("utf-16", "utf-32")) and b"\x00" not in raw[:4096]:
        charset = None   # UTF-16/32 text of any script is full of NUL bytes: the label is wrong
    if charset:
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong label: the bytes decide, as below
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    ascii_share = sum(b < 0x80 for b in raw[:20_000]) / max(1, len(raw[:20_000]))
    if ascii_share >= 0.5:
        # Mostly ASCII with some typographic characters: Windows-1252, the usual mislabel of US EHR
        # exports. A detector guesses badly on a few bytes (it reads "é –" as Cyrillic).
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes
    best = from_bytes(raw[:200_000]).best()
    if best is None:
        raise CannotRead("its bytes are not text in any charset the service recognises")
    return raw.decode(best.encoding, errors="replace")


_BLOCK = {"p", "div", "br", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "table", "ul", "ol",
          "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "caption", "thead", "tbody",
          "paragraph", "item", "content"}
_CELL = {"td", "th"}
# Never run, never read: code, styling, embedded objects, and the document's title (a title names
# the document, it is not a finding). <noscript> is read: it is what shows where scripts do not run.
_SKIP = {"script", "style", "template", "object", "iframe", "svg", "title"}


class _Text(HTMLParser):
    """HTML/XHTML → lines: a block element ends a line; cells of a row are joined on one line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        tag = tag.lower().split(":")[-1]
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append(" \t ")

    def handle_startendtag(self, tag, attrs):
        if tag.lower().split(":")[-1] in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        tag = tag.lower().split(":")[-1]
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def _lines(text: str) -> str:
    """Whitespace collapsed within lines; empty lines dropped (a block element already ends a line)."""
    lines = (" ".join(line.replace("\t", " ").split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return _lines("".join(parser.parts))


def pdf_text(raw: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise CannotRead("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages[:MAX_PDF_PAGES]]
    except CannotRead:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError):
        raise CannotRead("it is not a PDF the service can open") from None
    text = _lines("\n".join(pages))
    if not text:
        raise CannotRead("the PDF has no text layer (a scanned image)")
    return text


def _looks_like_html(text: str) -> bool:
    head = text[:500].lstrip().lower()
    return head.startswith(("<!doctype html", "<html", "<div", "<?xml")) and "<" in head


def read_attachment(attachment: dict, cap: int = MAX_DOCUMENT_BYTES) -> str:
    """The plain text of one attachment; CannotRead says why there is none."""
    media = _media_type(attachment)
    if media.startswith(("image/", "video/", "audio/")):
        raise CannotRead(f"it is an image or media file ({media}), not text")
    if media not in ("", "text/plain", "text/html", "application/xhtml+xml", "text/xml", "application/pdf"):
        raise CannotRead(f"its type {media} is not one the service reads (plain text, HTML, PDF)")
    raw = _bytes(attachment, cap)
    if media == "application/pdf" or (not media and raw.startswith(b"%PDF")):
        text = pdf_text(raw)
    else:
        decoded = _text_of_bytes(raw, _declared_charset(attachment))
        if "\x00" in decoded:
            raise CannotRead("its bytes are not text")
        is_markup = media in ("text/html", "application/xhtml+xml", "text/xml") or _looks_like_html(decoded)
        text = html_text(decoded) if is_markup else _lines(decoded)
    if not text.strip():
        raise CannotRead("it holds no text")
    return text[:MAX_DOCUMENT_CHARS]


# -- one chart -------------------------------------------------------------------------------
@dataclass
class _ChartTexts:
    texts: dict[int, tuple[AttachmentText, ...]]     # id(resource) → its attachments' texts
    unread: list[Unread]


_CHART: contextvars.ContextVar[_ChartTexts | None] = contextvars.ContextVar("spine_cds_chart_texts", default=None)


def _title(resource: dict, attachment: dict) -> str:
    if isinstance(attachment.get("title"), str) and attachment["title"].strip():
        return attachment["title"].strip()
    for field in ("type", "code"):
        concept = obj(resource.get(field))
        if isinstance(concept.get("text"), str):
            return concept["text"]
        for coding in array(concept.get("coding")):
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                return coding["display"]
    return ""


def _inline(attachments: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Attachments with data, or with neither data nor url. One that has only a url is the
    service's to fetch (cds_service/linked.py folds the Binary in as data, or reports why not)."""
    return [(source, a) for source, a in attachments if a.get("data") or not isinstance(a.get("url"), str)]


def _read_resource(resource: dict, budget: list[int] | None, unread: list[Unread]) -> tuple[AttachmentText, ...]:
    """The first rendition that reads (the same document is not read twice); when none does,
    every rendition is reported with its reason."""
    failed: list[Unread] = []
    for source, attachment in _ranked(_inline(attachments_of(resource))):
        try:
            if budget is not None and budget[0] <= 0:
                raise CannotRead(f"the chart's documents exceed {MAX_CHART_CHARS:,} characters, the most read per chart")
            text = read_attachment(attachment)
        except CannotRead as why:
            failed.append(Unread(reference(resource), source, _title(resource, attachment), str(why)))
            continue
        except Exception:  # a parser bug must cost one document, never the answer
            log.exception("attachment %s of %s", source, reference(resource))
            failed.append(Unread(reference(resource), source, _title(resource, attachment), "it could not be parsed"))
            continue
        if budget is not None:
            budget[0] -= len(text)
        return (AttachmentText.of(source, text),)
    unread.extend(failed)
    return ()


def read_chart(resources) -> tuple[Unread, ...]:
    """Decode every attachment of the chart once, under the chart cap; until forget_chart,
    attachment_texts answers from what was read here. Returns what could not be read."""
    unread: list[Unread] = []
    budget = [MAX_CHART_CHARS]
    texts = {id(r): _read_resource(r, budget, unread) for r in resources if attachments_of(r)}
    _CHART.set(_ChartTexts(texts, unread))
    return tuple(unread)


def use_texts(texts: dict[int, tuple[AttachmentText, ...]]) -> None:
    """Stand these decoded texts (by id of their resource) for what read_chart would have read: a
    part of a chart read in another process (fhir_mappings.build, forked_reading's partner)."""
    _CHART.set(_ChartTexts(texts, []))


def forget_chart() -> None:
    _CHART.set(None)


def attachment_texts(resource: dict) -> tuple[AttachmentText, ...]:
    if resource.get("resourceType") not in ("DocumentReference", "DiagnosticReport"):
        return ()
    chart = _CHART.get()
    if chart is not None and id(resource) in chart.texts:
        return chart.texts[id(resource)]
    return _read_resource(resource, None, [])
