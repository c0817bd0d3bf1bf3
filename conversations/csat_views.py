"""Public CSAT pages: no session, the survey's random token is the credential (conversations/csat.py)."""

from __future__ import annotations

import json
import logging

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from channels_app.adapters.web_chat.config import origin_allowed
from channels_app.models import Channel
from conversations import csat
from conversations.models import CsatSurvey
from omnidesk.lib.cors import cors_allow, cors_preflight

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 16 * 1024
NOT_FOUND = "This survey link is not valid. It may have been mistyped or cut short."
ORIGIN_REFUSED = "This site may not answer this survey."


class CsatAnswerForm(forms.Form):
    score = forms.TypedChoiceField(choices=[(s, s) for s in csat.SCORES], coerce=int,
                                   error_messages={"required": "Pick a rating from 1 to 5.",
                                                   "invalid_choice": "Pick a rating from 1 to 5."})
    comment = forms.CharField(required=False, max_length=csat.MAX_COMMENT_LENGTH, widget=forms.Textarea)


def _page(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, f"csat/{template}", context, status=status)
    # The token is in the URL: keep it out of caches and out of Referer headers to other sites.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def _problem(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return _page(request, "problem.html", {"message": message}, status=status)


def _survey_context(survey: CsatSurvey, **extra) -> dict:
    return {
        "survey": survey, "tenant_name": survey.tenant.name, "number": survey.conversation.number,
        "choices": [(s, csat.SCORE_LABELS[s]) for s in reversed(csat.SCORES)], **extra,
    }


@csrf_exempt
def csat_survey(request: HttpRequest, token: str, score: str | None = None) -> HttpResponse:
    """/csat/<token>/ (and /csat/<token>/<score>/): the page, its form, and the chat widget's JSON answer.

    Only the widget's JSON POST (token-bound, origin-checked) skips CSRF; the page's form is protected.
    """
    if request.method == "OPTIONS" or (request.method == "POST" and request.content_type == "application/json"):
        return _widget_answer(request, token)
    return _survey_page(request, token, score)


@csrf_protect
def _survey_page(request: HttpRequest, token: str, score: str | None) -> HttpResponse:
    if request.method not in ("GET", "HEAD", "POST"):
        return _problem(request, "This page only answers GET and POST.", 405)
    survey = csat.csat_survey_for_token(token)
    if survey is None:
        return _problem(request, NOT_FOUND, 404)
    if request.method == "POST":
        form = CsatAnswerForm(request.POST)
        if not form.is_valid():
            return _page(request, "survey.html", _survey_context(survey, form=form), status=400)
        return _answer(request, survey, form.cleaned_data["score"], form.cleaned_data["comment"], via="form")
    score = score if score is not None else request.GET.get("score")
    # One click in the e-mail records the score (HEAD is a prefetch, not a click); the page lets them change it.
    if score is not None and request.method == "GET":
        return _answer(request, survey, score, None, via="link")
    if not csat.csat_answer_open(survey):
        return _problem(request, "This survey has closed; thank you all the same.", 410)
    return _page(request, "survey.html", _survey_context(survey, form=CsatAnswerForm(initial={"score": survey.score})))


def _answer(request: HttpRequest, survey: CsatSurvey, score, comment, *, via: str) -> HttpResponse:
    try:
        survey = csat.csat_answer_record(tenant=survey.tenant_id, survey_id=survey.pk, score=score, comment=comment,
                                         via=via)
    except csat.CsatError as exc:
        if exc.status == 400:
            form = CsatAnswerForm(initial={"score": survey.score})
            return _page(request, "survey.html", _survey_context(survey, form=form, error=str(exc)), status=400)
        return _problem(request, str(exc), exc.status)
    form = CsatAnswerForm(initial={"score": survey.score, "comment": survey.comment})
    return _page(request, "survey.html", _survey_context(survey, form=form, thanks=True))


# --- The chat widget's JSON answer -----------------------------------------------------------------


def _json(status: int, body: dict, origin: str = "") -> JsonResponse:
    response = cors_allow(JsonResponse(body, status=status), origin)
    response["Cache-Control"] = "no-store"
    return response


def _widget_answer(request: HttpRequest, token: str) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    survey = csat.csat_survey_for_token(token)
    if survey is None:
        return _json(404, {"detail": NOT_FOUND})
    if survey.channel != Channel.CHAT or survey.inbox is None or not origin_allowed(survey.inbox, origin):
        return _json(403, {"detail": ORIGIN_REFUSED})
    if request.method == "OPTIONS":
        return cors_preflight(origin, methods=("POST", "OPTIONS"), headers=("Content-Type",))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_JSON_BYTES:
        return _json(413, {"detail": f"The request is larger than {MAX_JSON_BYTES} bytes."}, origin)
    try:
        payload = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        return _json(400, {"detail": "The body is not valid JSON."}, origin)
    if not isinstance(payload, dict) or "score" not in payload:
        return _json(400, {"detail": 'Send {"score": 1-5, "comment": "…"} as a JSON object.'}, origin)
    try:
        survey = csat.csat_answer_record(tenant=survey.tenant_id, survey_id=survey.pk, score=payload["score"],
                                         comment=payload.get("comment"), via="widget")
    except csat.CsatError as exc:
        return _json(exc.status, {"detail": str(exc)}, origin)
    return _json(200, {"score": survey.score, "comment": survey.comment}, origin)
