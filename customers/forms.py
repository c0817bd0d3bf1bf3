from __future__ import annotations

from django import forms

from customers.models import IdentityKind


class IdentityAddForm(forms.Form):
    kind = forms.ChoiceField(choices=IdentityKind.choices)
    value = forms.CharField(max_length=320)


class MergeForm(forms.Form):
    other = forms.IntegerField(min_value=1)
    survivor = forms.ChoiceField(choices=[("this", "This customer"), ("other", "The other customer")])
