"""E-mail to the people of a project, in Japanese and English.

Kura does not know a recipient's language, so every message carries both: the Japanese text,
a separator, the English text. A mail server that fails is logged; what the message reports
(a decision, a quarantine, a grant) stands.
"""

import logging
from collections.abc import Callable, Iterable
from urllib.parse import urljoin

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation

from accounts.models import Membership, Role

logger = logging.getLogger(__name__)

LANGUAGES = ("ja", "en")


def absolute_url(path: str) -> str:
    """``path`` on Kura's public address (``KURA_BASE_URL``), for links in e-mails."""
    return urljoin(settings.KURA_BASE_URL, path)


def project_emails(project_id: int, roles: Iterable[str] = (Role.PM,)) -> list[str]:
    """Addresses of the project's active members in ``roles`` (PMs by default)."""
    return list(
        Membership.objects.filter(
            project_id=project_id, role__in=list(roles), user__is_active=True
        ).values_list("user__email", flat=True)
    )


def send_bilingual(
    *, recipients: Iterable[str], compose: Callable[[], tuple[str, str]], what: str
) -> None:
    """Send one message to ``recipients`` (blank and repeated addresses dropped).

    ``compose`` returns ``(subject, body)`` and is called once per language, with that
    language active, so that it can translate its texts and labels.
    """
    recipients = sorted({email for email in recipients if email})
    if not recipients:
        return
    subjects, bodies = [], []
    for language in LANGUAGES:
        with translation.override(language):
            subject, body = compose()
        # A header holds one line: a title typed with a line break must not drop the mail.
        subjects.append(" ".join(subject.split()))
        bodies.append(body)
    try:
        send_mail("[Kura] " + " / ".join(subjects), "\n\n-----\n\n".join(bodies), None, recipients)
    except Exception:
        logger.exception("%s e-mail was not sent", what)
