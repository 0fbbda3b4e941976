"""Forms of the repository pages. They only parse input: the rules live in the services."""

import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.vocabularies import Tier


class TierChangeForm(forms.Form):
    """A steward changes an object's tier, or asks a curator to (repository.governance.tiers)."""

    tier = forms.ChoiceField(label=_("New access tier"), choices=Tier.choices)
    available_date = forms.DateField(
        label=_("Available date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("For an embargo: the day the data become public."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when opening data beyond the project: a curator reads it."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tomorrow = timezone.localdate() + datetime.timedelta(days=1)
        self.fields["available_date"].widget.attrs["min"] = tomorrow.isoformat()


class QuarantineClearForm(forms.Form):
    """A curator asks Kura to re-verify a quarantined object and clear it if intact
    (repository.preservation.quarantine)."""

    comment = forms.CharField(
        label=_("Comment"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "What you looked into. The audit trail keeps it; the uploader and the project's "
            "PMs read it if the quarantine is cleared."
        ),
    )


class TierDecisionForm(forms.Form):
    """A curator approves or rejects a tier change request (or all of a record's)."""

    decision = forms.ChoiceField(
        choices=[("approve", _("Approve")), ("reject", _("Reject"))], widget=forms.HiddenInput
    )
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when rejecting: the requester and the PM read it."),
    )

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"
