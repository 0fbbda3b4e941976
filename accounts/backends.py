"""Password sign-in, which a deployment may switch off (``KURA_LOCAL_PASSWORDS``)."""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


class LocalPasswordBackend(ModelBackend):
    """Django's model backend, accepting no password while local passwords are off.

    It stays installed either way: it answers every account's permissions, however the
    person signed in.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.KURA_LOCAL_PASSWORDS:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
