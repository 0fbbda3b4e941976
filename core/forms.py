"""Form helpers every app's views share."""

from django.core.exceptions import ValidationError


def form_errors_add(form, exc: ValidationError) -> None:
    """Show a service's refusal on the form: by field where it names one, else on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)
