"""The questionnaires that coverage information and form cards point at, served as FHIR R4."""
from __future__ import annotations

from flask import Blueprint, request

from cards import forms

from .errors import UnknownService

bp = Blueprint("forms", __name__)


@bp.get("/fhir/Questionnaire/<form_id>")
def read(form_id: str):
    resource = forms.questionnaires().get(form_id)
    if resource is None:
        raise UnknownService(f"no Questionnaire with id {form_id!r}", field="path")
    return resource, 200, {"Content-Type": "application/fhir+json"}


@bp.get("/fhir/Questionnaire")
def search():
    url = request.args.get("url", "")
    canonical, _, version = url.partition("|")
    found = [q for q in forms.questionnaires().values()
             if not url or (q["url"] == canonical and (not version or q["version"] == version))]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
              "entry": [{"fullUrl": f"{request.host_url}fhir/Questionnaire/{q['id']}", "resource": q} for q in found]}
    return bundle, 200, {"Content-Type": "application/fhir+json"}
