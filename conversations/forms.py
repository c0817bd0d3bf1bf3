from __future__ import annotations

from django import forms

from conversations.models import Status


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
