"""factory_boy factories for Kura's models.

Defaults build the smallest valid row: a stored, non-shared object with a DMP record in a
JST life-science project. Site-wide roles (curator, program officer) are groups, so they
have helpers rather than factories of their own.
"""

import datetime

import factory
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Institution, Membership, Project, Role, User
from core.vocabularies import MetadataAccess, Tier
from dmp.models import DmpRecord
from repository.models import (
    AccessGrant,
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)

PASSWORD = "pw"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n:04d}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    name_en = factory.LazyAttribute(lambda u: f"Test {u.username}")
    password = factory.django.Password(PASSWORD)


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    name_en = factory.Sequence(lambda n: f"Institute {n}")
    name_ja = factory.Sequence(lambda n: f"研究所{n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    institution = factory.SubFactory(InstitutionFactory)
    name_en = factory.Sequence(lambda n: f"Project {n}")
    name_ja = factory.Sequence(lambda n: f"プロジェクト{n}")
    funder = "JST"
    research_field = "189"
    program_name_en = "Moonshot Goal 2"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.RESEARCHER


def _record_available_date(record) -> datetime.date | None:
    """The database insists on an available date exactly when access is embargoed."""
    if record.access_rights == Tier.EMBARGOED:
        return timezone.localdate() + datetime.timedelta(days=30)
    return None


class DmpRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DmpRecord

    project = factory.SubFactory(ProjectFactory)
    data_number = factory.Sequence(lambda n: f"D-{n:05d}")
    title_en = factory.Sequence(lambda n: f"Dataset {n}")
    access_rights = Tier.NON_SHARED
    available_date = factory.LazyAttribute(_record_available_date)
    metadata_access = MetadataAccess.CLOSED


class DataObjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataObject

    project = factory.SubFactory(ProjectFactory)
    record = factory.SubFactory(DmpRecordFactory, project=factory.SelfAttribute("..project"))
    uploaded_by = factory.SubFactory(UserFactory)
    original_filename = factory.Sequence(lambda n: f"specimen-{n:05d}.tiff")
    size = 1024
    content_type = "image/tiff"
    status = DataObject.Status.STORED
    tier = Tier.NON_SHARED
    stored_at = factory.LazyFunction(timezone.now)


class TierChangeRequestFactory(factory.django.DjangoModelFactory):
    """Pass ``data_objects=[...]`` to attach objects to the request."""

    class Meta:
        model = TierChangeRequest
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    requested_by = factory.SubFactory(UserFactory)
    requested_tier = Tier.PUBLIC
    status = RequestStatus.PENDING

    @factory.post_generation
    def data_objects(self, create, extracted, **kwargs):
        if create and extracted:
            self.data_objects.add(*extracted)


class AccessGrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessGrant

    record = factory.SubFactory(DmpRecordFactory)
    grantee = factory.SubFactory(UserFactory)
    granted_by = factory.SubFactory(UserFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=30))


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    actor = factory.SubFactory(UserFactory)
    action = AuditEvent.Action.TIER_CHANGED
    project = factory.SubFactory(ProjectFactory)


def make_curator(**kwargs) -> User:
    """A staff user in the curator group (which every migrate creates)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=settings.KURA_CURATOR_GROUP))
    return user


def make_program_officer(**kwargs) -> User:
    """A user in the program-officer group (which every migrate creates)."""
    user = UserFactory(**kwargs)
    user.groups.add(Group.objects.get(name=settings.KURA_PROGRAM_OFFICER_GROUP))
    return user


def make_superuser(**kwargs) -> User:
    return UserFactory(is_staff=True, is_superuser=True, **kwargs)


def queued_work(callbacks) -> list:
    """The on-commit callbacks that are work (tasks, mail), without the bumps of cached
    pages' generations (core.generations) that every write registers too."""
    from core.generations import Generation

    return [c for c in callbacks if getattr(c, "__func__", None) is not Generation.bump]
