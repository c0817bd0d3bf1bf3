from __future__ import annotations

from django.urls import path, register_converter

from conversations.csat_views import csat_survey


class ScoreConverter:
    # Any digits, so /csat/<token>/9/ answers "pick 1 to 5" (400) instead of a bare 404.
    regex = "[0-9]{1,3}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(ScoreConverter, "csat_score")

app_name = "csat"

urlpatterns = [
    path("<str:token>/", csat_survey, name="survey"),
    path("<str:token>/<csat_score:score>/", csat_survey, name="survey_score"),
]
