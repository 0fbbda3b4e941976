import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from repository.governance.audit import AuditFilter
from repository.governance.grants import PURPOSE_MAX_LENGTH
from repository.models import AuditEvent


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class AccessRequestForm(forms.Form):
    purpose = forms.CharField(
        label=_("Purpose"),
        max_length=PURPOSE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_(
            "What you will use the data for, in which project or study, and who will handle it."
        ),
        error_messages={
            "required": _("Say what you will use the data for: the project decides on it.")
        },
    )


class ApproveForm(forms.Form):
    expires_on = forms.DateField(
        label=_("Access until"),
        widget=DateInput(),
        help_text=_("The last day on which the files can be downloaded."),
        error_messages={
            "required": _("Choose the date until which access is granted."),
            "invalid": _("Enter a date such as 2030-03-31."),
        },
    )
    comment = forms.CharField(
        label=_("Comment to the requester"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    comment = forms.CharField(
        label=_("Reason for the requester"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("Tell the requester why access is refused.")},
    )


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("All actions")), *AuditEvent.Action.choices],
    )
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=DateInput(),
        error_messages={"invalid": _("Enter a date such as 2030-03-31.")},
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=DateInput(),
        error_messages={"invalid": _("Enter a date such as 2030-03-31.")},
    )
    actor = forms.CharField(
        label=_("Actor"),
        required=False,
        max_length=150,
        help_text=_("A user name, or part of a person's name."),
    )

    def clean_date_to(self):
        date_to = self.cleaned_data.get("date_to")
        # The trail runs to the end of the day: the day after the calendar's last one does
        # not exist.
        if date_to == datetime.date.max:
            raise ValidationError(
                _("Enter a date before %(date)s.") % {"date": datetime.date.max.isoformat()}
            )
        return date_to

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise ValidationError(_("The start date is after the end date."))
        return cleaned

    def filters(self) -> AuditFilter:
        """The filter the form describes; an unbound form filters nothing."""
        if not self.is_bound:
            return AuditFilter()
        data = self.cleaned_data
        return AuditFilter(
            action=data.get("action") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            actor=data.get("actor") or "",
        )
