from __future__ import annotations

from django import forms

from conversations.models import Priority, Status


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)
    snoozed_until = forms.DateTimeField(required=False)


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20000)


class ReplyForm(forms.Form):
    channel = forms.ChoiceField(choices=())
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20000)

    def __init__(self, *args, channels: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channels


class AssignForm(forms.Form):
    """Choices are the tenant's own people and teams, so an id from elsewhere is a form error."""

    assignee = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)

    def __init__(self, *args, members, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Unassigned"), *((str(m.user_id), m.name) for m in members)]
        self.fields["team"].choices = [("", "No team"), *((str(t.pk), t.name) for t in teams)]


class DetailsForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)
    tags = forms.CharField(required=False, max_length=1000, help_text="Comma-separated.")

    def clean_tags(self) -> list[str]:
        return [tag for tag in (part.strip() for part in self.cleaned_data["tags"].split(",")) if tag]
