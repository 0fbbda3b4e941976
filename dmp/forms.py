"""Forms of the DMP pages: the plan's answers and a record with its creators.

Vocabulary selects and item names are built at form init in the page's language
(``Term.label(language)``), not from the models' "ja | en" choices.
"""

from django import forms
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.vocabularies import (
    ACCESS_RIGHTS,
    DATA_POLICY_FREE,
    DATA_TYPES,
    LICENSES,
    RESEARCH_FIELDS,
    SAME_AS_PROJECT,
    Vocabulary,
)

from .common_metadata import REQUIRED
from .items import FIELDSETS, ITEM_NAMES, item_stem
from .madmp_import import DUPLICATE_CHOICES
from .models import DataManagementPlan, DmpRecord
from .records_import import IMPORT_FORMATS
from .services import CREATOR_FIELDS, PLAN_ANSWER_FIELDS, RECORD_FIELDS, required_item_errors

# Fields that, between them, satisfy a required item (a pair's halves are both marked).
REQUIRED_FIELDS = frozenset(
    name
    for requirement in REQUIRED
    if requirement.name not in {"available_date", "data_man_contact"}
    for name in requirement.fields
)
# Required only in some cases: marked, with the condition in the help text.
CONDITIONAL_FIELDS = {
    "available_date": _("Required when access rights are embargoed."),
    "data_man_number": _("Required when the data manager is an individual."),
    "data_man_name_ja": _("Required when the data manager is an individual."),
    "data_man_email": _("Or give the organisation, address and phone number."),
}

VOCABULARY_FIELDS: dict[str, Vocabulary] = {
    "data_type": DATA_TYPES,
    "data_policy_free": DATA_POLICY_FREE,
    "data_policy_license": LICENSES,
    "access_rights": ACCESS_RIGHTS,
}


def _vocabulary_choices(vocabulary: Vocabulary, language: str, blank: bool) -> list:
    choices = [(term.code, term.label(language)) for term in vocabulary]
    return ([("", _("Choose…"))] + choices) if blank else choices


class PlanForm(forms.ModelForm):
    class Meta:
        model = DataManagementPlan
        fields = list(PLAN_ANSWER_FIELDS)
        widgets = {
            name: forms.Textarea(attrs={"rows": 4})
            for name in PLAN_ANSWER_FIELDS
            if name != "title"
        }


def _https_urls(model_field, **kwargs):
    if isinstance(model_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return model_field.formfield(**kwargs)


class RecordForm(forms.ModelForm):
    """Every common metadata item of a record; required items are marked and checked."""

    use_required_attribute = False  # the server's field-level errors, in the page's language

    class Meta:
        model = DmpRecord
        fields = list(RECORD_FIELDS)
        formfield_callback = _https_urls
        widgets = {
            "date_issued_updated": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "available_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "description_ja": forms.Textarea(attrs={"rows": 4}),
            "description_en": forms.Textarea(attrs={"rows": 4}),
            "data_policy_cite_ja": forms.Textarea(attrs={"rows": 2}),
            "data_policy_cite_en": forms.Textarea(attrs={"rows": 2}),
            "remarks_ja": forms.Textarea(attrs={"rows": 3}),
            "remarks_en": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, project, language: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.instance.project = project
        self.language = language or get_language() or "en"
        for name, vocabulary in VOCABULARY_FIELDS.items():
            field = self.fields[name]
            field.choices = _vocabulary_choices(
                vocabulary, self.language, blank=name in {"data_policy_free", "data_policy_license"}
            )
        self.fields["data_research_field"].choices = [
            (
                SAME_AS_PROJECT,
                _("Same as the project (%(field)s)")
                % {"field": project_field(project, self.language)},
            )
        ] + _vocabulary_choices(RESEARCH_FIELDS, self.language, blank=False)
        for name, field in self.fields.items():
            stem = item_stem(name)
            field.required = False  # checked in clean() with the common rules
            if stem in ITEM_NAMES and stem == name:
                field.label = ITEM_NAMES[stem].label(self.language)
            if name in REQUIRED_FIELDS:
                field.widget.attrs["aria-required"] = "true"

    @property
    def creators_label(self) -> str:
        return ITEM_NAMES["creators"].label(self.language)

    def rows(self):
        """Fieldsets for the template: single fields and ja/en pairs side by side."""
        for slug, legend, names in FIELDSETS:
            rows = []
            for name in names:
                if name in self.fields:
                    describe(self[name], f"{self[name].auto_id}_errors")
                    rows.append(
                        {
                            "pair": False,
                            "field": self[name],
                            "required": name in REQUIRED_FIELDS,
                            "condition": CONDITIONAL_FIELDS.get(name, ""),
                        }
                    )
                else:
                    ja, en = self[f"{name}_ja"], self[f"{name}_en"]
                    # One message for the pair when both halves have the same complaint.
                    shared = list(ja.errors) if list(ja.errors) == list(en.errors) else []
                    for half in (ja, en):
                        describe(
                            half, f"pair-{name}-errors" if shared else f"{half.auto_id}_errors"
                        )
                    rows.append(
                        {
                            "pair": True,
                            "name": name,
                            "label": ITEM_NAMES[name].label(self.language),
                            "ja": ja,
                            "en": en,
                            "required": ja.name in REQUIRED_FIELDS,
                            "condition": CONDITIONAL_FIELDS.get(ja.name, ""),
                            "invalid": bool(ja.errors or en.errors),
                            "shared_errors": shared,
                        }
                    )
            yield {"slug": slug, "legend": legend, "rows": rows}

    def clean(self):
        cleaned = super().clean()
        candidate = DmpRecord(
            project=self.project,
            **{name: value for name, value in cleaned.items() if name in RECORD_FIELDS},
        )
        for name, messages in required_item_errors(candidate).items():
            if name in self.fields and name not in self.errors:
                for message in messages:
                    self.add_error(name, message)
        return cleaned

    def _post_clean(self):
        # The service validates the instance (uniqueness, constraints) when saving.
        pass


def describe(bound_field, errors_id: str) -> None:
    """Point an invalid input at its error messages, for screen readers."""
    if bound_field.errors:
        bound_field.field.widget.attrs["aria-invalid"] = "true"
        bound_field.field.widget.attrs["aria-describedby"] = errors_id


def project_field(project, language: str) -> str:
    return (
        RESEARCH_FIELDS[project.research_field].label(language)
        if project.research_field in RESEARCH_FIELDS
        else ""
    )


class CreatorForm(forms.Form):
    erad_researcher_number = forms.RegexField(
        regex=r"^[0-9]{8}$",
        required=False,
        label=_("e-Rad researcher number"),
        error_messages={"invalid": _("An e-Rad researcher number has 8 digits.")},
        max_length=8,
    )
    name_ja = forms.CharField(required=False, max_length=200, label=_("Name (Japanese)"))
    name_en = forms.CharField(required=False, max_length=200, label=_("Name (English)"))
    affiliation_ja = forms.CharField(
        required=False, max_length=500, label=_("Affiliation (Japanese)")
    )
    affiliation_en = forms.CharField(
        required=False, max_length=500, label=_("Affiliation (English)")
    )

    def clean(self):
        cleaned = super().clean()
        if any(cleaned.get(name) for name in CREATOR_FIELDS) and not (
            cleaned.get("name_ja") or cleaned.get("name_en")
        ):
            message = _("Enter the name in Japanese or English (or both).")
            self.add_error("name_ja", message)
            self.add_error("name_en", message)
        return cleaned


CreatorFormSet = forms.formset_factory(CreatorForm, extra=1, can_delete=True)


def creators_formset(*, data=None, record: DmpRecord | None = None) -> forms.BaseFormSet:
    initial = []
    if record is not None and record.pk:
        initial = [
            {name: getattr(c, name) for name in CREATOR_FIELDS}
            for c in record.creators.order_by("position", "pk")
        ]
    return CreatorFormSet(data=data, initial=initial, prefix="creators")


def creators_from(formset: forms.BaseFormSet) -> list[dict[str, str]]:
    """The creators a valid formset describes, in order, leaving out blank and removed rows."""
    return [
        {name: form.cleaned_data.get(name, "") for name in CREATOR_FIELDS}
        for form in formset.forms
        if form.cleaned_data
        and not form.cleaned_data.get("DELETE")
        and any(form.cleaned_data.get(name) for name in CREATOR_FIELDS)
    ]


class ImportForm(forms.Form):
    """A maDMP 1.2 JSON document or a common-metadata CSV (Japanese or English headers)."""

    MAX_BYTES = 20 * 1024 * 1024

    format = forms.ChoiceField(label=_("Format"), choices=IMPORT_FORMATS)
    file = forms.FileField(label=_("File"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 20 MB."))
        return upload


class MadmpReviewForm(forms.Form):
    """The review step of a maDMP import: what the person supplies (each answer fills the
    item for every dataset that lacks it) and what to do with datasets that share an
    identifier. The pending document is named by ``token`` (kept in the session)."""

    token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        language = get_language()
        for question in review.questions:
            datasets = ", ".join(str(d) for d in question.datasets)
            label = _("%(item)s (datasets %(datasets)s)") % {
                "item": question.label,
                "datasets": datasets,
            }
            if question.choices:
                vocabulary = (
                    LICENSES if question.name == "data_policy_license" else DATA_POLICY_FREE
                )
                field = forms.ChoiceField(
                    label=label,
                    choices=[("", "—")]
                    + [(term.code, term.label(language)) for term in vocabulary],
                )
            elif question.name in ("description", "data_policy_cite"):
                field = forms.CharField(label=label, widget=forms.Textarea(attrs={"rows": 3}))
            elif question.name == "data_man_contact":
                field = forms.EmailField(label=label)
            else:
                field = forms.CharField(label=label, max_length=500)
            self.fields[f"answer_{question.name}"] = field
        if review.duplicates:
            self.fields["duplicates"] = forms.ChoiceField(
                label=_("Datasets that share an identifier"),
                choices=DUPLICATE_CHOICES,
                initial=DUPLICATE_CHOICES[0][0],
                widget=forms.RadioSelect,
            )

    def answers(self) -> dict[str, str]:
        return {
            name.removeprefix("answer_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("answer_")
        }
