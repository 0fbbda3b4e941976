"""Forms of the members pages and the project creation page."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .members import PROJECT_FIELDS
from .models import Institution, Invitation, Project, Role


class InviteForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Invite by"), choices=Invitation.Kind.choices, initial=Invitation.Kind.EMAIL
    )
    value = forms.CharField(
        label=_("Address"),
        max_length=255,
        help_text=_("An e-mail address, a GakuNin ePPN (user@example.ac.jp) or an ORCID iD."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.RESEARCHER)

    def __init__(self, *args, roles: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ProjectCreateForm(forms.ModelForm):
    institution = forms.ModelChoiceField(
        label=_("Institution"), queryset=Institution.objects.order_by("name_en", "name_ja")
    )
    first_pm = forms.CharField(
        label=_("First PM"),
        required=False,
        max_length=254,
        help_text=_("Username or e-mail address of an existing account; empty: yourself."),
    )

    class Meta:
        model = Project
        fields = PROJECT_FIELDS

    def _post_clean(self) -> None:
        # The service validates the project (project_create): the form only parses it.
        pass
