from django import forms
from django.utils.translation import gettext_lazy as _

from core.vocabularies import Tier
from repository.governance.review.selectors import QueueFilters, projects_with_requests


class QueueFilterForm(forms.Form):
    """Filters of the review queue (GET); an invalid value is reported, not guessed."""

    project = forms.ModelChoiceField(
        label=_("Project"), queryset=None, required=False, empty_label=_("All projects")
    )
    tier = forms.ChoiceField(
        label=_("Requested tier"), choices=[("", _("Any tier")), *Tier.choices], required=False
    )
    older_than_days = forms.IntegerField(
        label=_("Waiting for at least (days)"), min_value=0, max_value=3650, required=False
    )
    personal_data = forms.ChoiceField(
        label=_("Personal data"),
        choices=[("", _("Either")), ("yes", _("Flagged")), ("no", _("Not flagged"))],
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects_with_requests()

    def filters(self) -> QueueFilters:
        data = self.cleaned_data
        personal = {"yes": True, "no": False}.get(data["personal_data"])
        return QueueFilters(
            project_id=data["project"].pk if data["project"] else None,
            tier=data["tier"] or None,
            older_than_days=data["older_than_days"],
            personal_data=personal,
        )
