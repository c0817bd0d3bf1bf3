from __future__ import annotations

import mimetypes
import re
import zoneinfo

from django import forms
from django.utils import timezone

from conversations.models import Priority, Status
from conversations.services import OutgoingFile, attachment_filename, check_schedule_time

# What one reply or note may carry; channels narrow it further (WhatsApp: one file, MMS: 5 MB in all).
MAX_FILES = 10
MAX_FILE_BYTES = 20_000_000
MAX_FILES_TOTAL_BYTES = 25_000_000
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Any number of files under one name, checked against the limits and read into OutgoingFiles."""

    widget = MultipleFileInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None) -> list[OutgoingFile]:
        uploads = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if len(uploads) > MAX_FILES:
            raise forms.ValidationError(f"Attach at most {MAX_FILES} files; you chose {len(uploads)}.")
        for upload in uploads:
            super().clean(upload, initial)
            if upload.size > MAX_FILE_BYTES:
                raise forms.ValidationError(
                    f"{attachment_filename(upload.name)} is {upload.size / 1_000_000:.1f} MB; "
                    f"a file may have at most {MAX_FILE_BYTES // 1_000_000} MB."
                )
        total = sum(upload.size for upload in uploads)
        if total > MAX_FILES_TOTAL_BYTES:
            raise forms.ValidationError(
                f"The files add up to {total / 1_000_000:.1f} MB; at most {MAX_FILES_TOTAL_BYTES // 1_000_000} MB "
                "go with one message."
            )
        return [_outgoing(upload) for upload in uploads]


def _outgoing(upload) -> OutgoingFile:
    name = attachment_filename(upload.name)
    content_type = (upload.content_type or "").lower()
    if not _CONTENT_TYPE.fullmatch(content_type) or content_type == "application/octet-stream":
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return OutgoingFile(name=name, content=upload.read(), content_type=content_type)


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)
    snoozed_until = forms.DateTimeField(required=False)


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20000)
    attachments = AttachmentsField()


class ReplyForm(forms.Form):
    channel = forms.ChoiceField(choices=())
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20000)
    attachments = AttachmentsField()
    # The browser's datetime-local (no zone), read in the tenant's time zone.
    send_at = forms.DateTimeField(
        required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, channels: list[tuple[str, str]], time_zone: str = "UTC", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channels
        self.time_zone = zoneinfo.ZoneInfo(time_zone or "UTC")

    def full_clean(self) -> None:
        # Django makes a naive datetime aware in the current time zone: make that the tenant's.
        with timezone.override(self.time_zone):
            super().full_clean()

    def clean_send_at(self):
        send_at = self.cleaned_data["send_at"]
        if send_at is not None:
            try:
                check_schedule_time(send_at)
            except forms.ValidationError as exc:
                raise forms.ValidationError(f"{' '.join(exc.messages)} (Times are in {self.time_zone.key}.)") from exc
        return send_at


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


class MergeForm(forms.Form):
    """The number of the conversation to merge into the one on the page."""

    other = forms.IntegerField(min_value=1, max_value=2**31 - 1, label="Conversation to merge in")
