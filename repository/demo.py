"""Demo data: one Moonshot-style project with people in every role and data in every tier.

Loaded by ``python manage.py kura_demo``. Safe to run twice: the demo project's Japan
Grant Number marks the data as loaded, and a second run changes nothing.

The files are generated at load time (nothing large is kept in git) and read as an upload
is: their technical metadata is extracted, and those Kura previews (the microscopy PNGs, a
4,096 x 3,072 tiled TIFF to zoom into, an RNA-seq FASTQ.gz) are queued for the preview
worker once the load commits, so a walk through the demo shows thumbnails, the deep-zoom
viewer and a FASTQ summary.
"""

import contextlib
import gzip
import hashlib
import io
import math
import os
import random
import secrets
import struct
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.models import Institution, Membership, Project, Role, User
from core.machine_text import Message
from core.vocabularies import MetadataAccess, Tier
from dmp.history import record_revision_write
from dmp.models import DataManagementPlan, DmpRecord, DmpRecordRevision
from dmp.services import plan_save
from repository.governance.tiers import tier_request_create
from repository.models import (
    AccessRequest,
    DataObject,
    FixityCheck,
    new_storage_key,
)
from repository.preservation.fixity import small_object_scan
from repository.preservation.object_store import object_store
from repository.preservation.queue import preview_send
from repository.previews.keys import preview_kind

DEMO_GRANT_NUMBER = "JPMJMS2291"
# The generated files that show previews: a tile scan large enough to zoom into (a few
# pyramid levels of 512-pixel tiles, about 3 MB as a deflated tiled TIFF) and enough reads
# for a FASTQ summary's charts to have a shape.
TILESCAN_SIZE = (4096, 3072)
FASTQ_READS = 2000
PASSWORD_FILE_NAME = "demo-password"  # noqa: S105 - a file name, not a password


class DemoDataError(Exception):
    """The demo data cannot be loaded into this database or storage."""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


@dataclass(frozen=True)
class DemoResult:
    created: bool
    project: Project
    logins: tuple[DemoLogin, ...]
    # None when the password the demo users were given is neither configured nor on file.
    password: str | None


@dataclass(frozen=True)
class _Person:
    username: str
    role: str
    name_ja: str
    name_en: str
    erad_researcher_number: str = ""
    membership: Role | None = None
    group_setting: str = ""
    is_staff: bool = False


PEOPLE = (
    _Person("pm", "project manager", "山田 花子", "Hanako Yamada", "70312345", Role.PM),
    _Person("data_manager", "data manager", "佐藤 健", "Ken Sato", "40598761", Role.DATA_MANAGER),
    _Person("researcher", "researcher", "鈴木 陽菜", "Hina Suzuki", "90823456", Role.RESEARCHER),
    _Person(
        "collaborator",
        "collaborator",
        "高橋 翔",
        "Sho Takahashi",
        "30765432",
        Role.COLLABORATOR,
    ),
    _Person("outsider", "signed in, no membership", "田中 美咲", "Misaki Tanaka"),
    _Person(
        "curator",
        "curator (staff)",
        "伊藤 誠",
        "Makoto Ito",
        group_setting="KURA_CURATOR_GROUP",
        is_staff=True,
    ),
    _Person(
        "program_officer",
        "program officer",
        "渡辺 直子",
        "Naoko Watanabe",
        group_setting="KURA_PROGRAM_OFFICER_GROUP",
    ),
)

LOGINS = tuple(DemoLogin(p.username, p.role) for p in PEOPLE)


def demo_data_load(*, password: str | None = None) -> DemoResult:
    """Load the demo institution, project, people, DMP, records and data objects once.

    ``password`` is given to every demo user. Without it the password is
    ``settings.KURA_DEMO_PASSWORD``, else the one kept in ``VAR_DIR/demo-password``, else a
    new random one, which is then kept there (mode 0600) so later runs report the same.

    If the demo project already exists nothing is changed; the result then reports a
    password only if it is one the demo users actually have. The database work is one
    transaction, and object bytes written to storage are deleted again if it fails.
    """
    project = Project.objects.filter(japan_grant_number=DEMO_GRANT_NUMBER).first()
    if project is not None:
        candidates = [password] if password else _configured_passwords()
        return DemoResult(
            created=False,
            project=project,
            logins=LOGINS,
            password=_password_in_use(candidates),
        )

    taken = sorted(
        User.objects.filter(username__in=[p.username for p in PEOPLE]).values_list(
            "username", flat=True
        )
    )
    if taken:
        raise DemoDataError(
            f"The demo usernames {', '.join(taken)} are taken but the demo project does not "
            "exist; load the demo data into a database without those users."
        )

    if password is None:
        configured = _configured_passwords()
        password = configured[0] if configured else _password_file_write(secrets.token_urlsafe(12))

    written: list[str] = []
    try:
        with transaction.atomic():
            project = _load(password_hash=make_password(password), written=written)
    except BaseException:
        for key in written:
            with contextlib.suppress(Exception):  # best effort: the original error matters
                default_storage.delete(key)
        raise
    return DemoResult(created=True, project=project, logins=LOGINS, password=password)


# --- Password --------------------------------------------------------------------------


def _password_file() -> Path:
    return Path(settings.VAR_DIR) / PASSWORD_FILE_NAME


def _configured_passwords() -> list[str]:
    """The configured password first, then the one on file (either may be missing)."""
    candidates = [settings.KURA_DEMO_PASSWORD]
    with contextlib.suppress(FileNotFoundError):
        candidates.append(_password_file().read_text(encoding="utf-8").strip())
    return [c for c in candidates if c]


def _password_file_write(password: str) -> str:
    path = _password_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        path.chmod(0o600)  # in case the file already existed with wider permissions
    except OSError as exc:
        raise DemoDataError(
            f"Cannot keep the demo password in {path} ({exc}); set KURA_DEMO_PASSWORD instead."
        ) from exc
    return password


def _password_in_use(candidates: list[str]) -> str | None:
    stored = User.objects.filter(username=PEOPLE[0].username).values_list("password", flat=True)
    stored_hash = stored.first()
    if not stored_hash:
        return None
    return next((c for c in candidates if check_password(c, stored_hash)), None)


# --- Loading ---------------------------------------------------------------------------


def _load(*, password_hash: str, written: list[str]) -> Project:
    today = timezone.localdate()
    embargo_until = date(today.year + 1, 1, 15)

    institution, _ = Institution.objects.get_or_create(
        ror_id="https://ror.org/0abcdef12",
        defaults={"name_ja": "国立研究開発法人 蔵研究所", "name_en": "Kura Research Institute"},
    )
    project = Project.objects.create(
        institution=institution,
        name_ja="農村コホートにおける環境曝露と代謝疾患の超早期予測",
        name_en="Ultra-early prediction of metabolic disease from environmental exposure "
        "in a rural cohort",
        funder="JST",
        funding_stream_code="MJMS",
        program_name_ja="ムーンショット型研究開発事業 目標2 "
        "2050年までに、超早期に疾患の予測・予防をすることができる社会を実現",
        program_name_en="Moonshot Research and Development Program Goal 2: "
        "Realization of ultra-early disease prediction and intervention by 2050",
        japan_grant_number=DEMO_GRANT_NUMBER,
        research_field="189",
    )
    users = _people(project, password_hash)
    _plan(project, users["pm"])
    records = _records(project, embargo_until)

    now = timezone.now()

    def stored(record, uploader, filename, content_type, data, tier, **fields) -> DataObject:
        return _data_object(
            project=project,
            record=records[record],
            uploaded_by=users[uploader],
            filename=filename,
            content_type=content_type,
            data=data,
            tier=tier,
            now=now,
            written=written,
            **fields,
        )

    stored(
        "D-001",
        "researcher",
        "liver_0001_DAPI-MitoTracker_maxproj.png",
        "image/png",
        _microscopy_png(seed=1),
        Tier.PUBLIC,
    )
    stored(
        "D-001",
        "researcher",
        "liver_0001_DAPI-MitoTracker_tilescan.tif",
        "image/tiff",
        _microscopy_tiff(),
        Tier.PUBLIC,
    )
    stored(
        "D-001",
        "researcher",
        "liver_0001_roi_measurements.csv",
        "text/csv",
        _roi_csv(),
        Tier.PUBLIC,
    )
    stored(
        "D-002",
        "researcher",
        "liver_RNAseq_S01_R1.fastq.gz",
        "application/gzip",
        _fastq_gz(reads=FASTQ_READS),
        Tier.EMBARGOED,
        available_date=embargo_until,
    )
    stored(
        "D-003",
        "researcher",
        f"soil_ch4_flux_{today.year - 1}.csv",
        "text/csv",
        _methane_csv(today.year - 1),
        Tier.SHARED,
    )
    awaiting_review = stored(
        "D-001",
        "researcher",
        "liver_0002_DAPI-MitoTracker_maxproj.png",
        "image/png",
        _microscopy_png(seed=2),
        Tier.SHARED,
    )
    stored(
        "D-004",
        "researcher",
        "sub-001_fdg-pet_frames.raw",
        "application/octet-stream",
        os.urandom(8 * 1024),
        Tier.SHARED,
        contains_personal_data=True,
    )
    stored(
        "D-005",
        "data_manager",
        "participant_key_table.csv",
        "text/csv",
        _key_table_csv(),
        Tier.NON_SHARED,
        contains_personal_data=True,
    )

    # Asked through the service uploads and the object page use, so that the request and
    # its audit event read as any other (the trail names each item in the reader's language).
    tier_request_create(
        actor=users["researcher"],
        objects=[awaiting_review],
        tier=Tier.PUBLIC,
        available_date=None,
        reason=(
            "2回目の撮影分です。公開済みの1回目と同じ条件で撮影しました。公開をお願いします。\n"
            "Second imaging session, acquired under the same conditions as the published "
            "first one; please open it as well."
        ),
    )
    # Someone outside the project asks for the shared methane data: the PM's queue.
    AccessRequest.objects.create(
        record=records["D-003"],
        requester=users["outsider"],
        purpose=(
            "水田メタン排出量のメタ解析に使用します (科研費 25K00001)。\n"
            "For a meta-analysis of methane emission from paddy fields (KAKENHI 25K00001)."
        ),
    )
    return project


def _people(project: Project, password_hash: str) -> dict[str, User]:
    users = {}
    for person in PEOPLE:
        first_name, _, last_name = person.name_en.partition(" ")
        user = User.objects.create(
            username=person.username,
            password=password_hash,
            email=f"{person.username}@example.org",
            first_name=first_name,
            last_name=last_name,
            name_ja=person.name_ja,
            name_en=person.name_en,
            erad_researcher_number=person.erad_researcher_number,
            is_staff=person.is_staff,
        )
        if person.membership is not None:
            Membership.objects.create(user=user, project=project, role=person.membership)
        if person.group_setting:
            group, _ = Group.objects.get_or_create(name=getattr(settings, person.group_setting))
            user.groups.add(group)
        users[person.username] = user
    return users


def _plan(project: Project, pm: User) -> DataManagementPlan:
    # Through the service, so the plan starts with version 1 in its history.
    return plan_save(
        actor=pm,
        plan_or_project=project,
        answers={
            "title": "データマネジメントプラン: 農村コホートにおける環境曝露と代謝疾患の超早期予測",
            "data_produced": (
                "本プロジェクトでは、(1) 曝露モデルマウス肝臓組織の共焦点蛍光顕微鏡画像、"
                "(2) 同組織の RNA-seq リード (FASTQ)、(3) コホート地域の農地土壌メタンフラックス"
                "測定値、(4) 参加者の脳 FDG-PET 画像、(5) 参加者対応表を作成する。\n\n"
                "The project produces (1) confocal fluorescence microscopy images of liver tissue "
                "from exposure-model mice, (2) RNA-seq reads (FASTQ) of the same tissue, (3) "
                "methane flux measurements from farmland soil in the cohort area, (4) brain "
                "FDG-PET images of cohort participants and (5) the participant key table."
            ),
            "storage_and_preservation": (
                "全データを蔵研究所の研究データリポジトリ Kura に保存し、SHA-256 による"
                "フィクシティ検査を定期的に行う。プロジェクト終了後 10 年間保存する。\n\n"
                "All data are kept in Kura, the institute's research-data repository, with "
                "scheduled SHA-256 fixity checks, and preserved for ten years after the project."
            ),
            "publication_policy": (
                "顕微鏡画像は CC BY 4.0 で公開する。"
                "RNA-seq データは論文公開まで公開期間猶予とする。"
                "土壌メタンデータは共同研究機関と共有し、そのメタデータは公開する。\n\n"
                "Microscopy images are published under CC BY 4.0. RNA-seq data are embargoed "
                "until the paper is published. Soil methane data are shared with partner "
                "institutions, and their metadata are open."
            ),
            "restriction_reasons": (
                "PET 画像と参加者対応表は個人情報を含む。PET 画像は倫理審査委員会の承認"
                " (承認番号 KURA-2024-017) と参加者の同意の範囲内でのみ共有し、対応表は"
                "共有しない。\n\n"
                "PET images and the participant key table contain personal data. PET images are "
                "shared only as far as the ethics approval (KURA-2024-017) and the participants' "
                "consent allow; the key table is never shared."
            ),
            "management_roles": (
                "研究代表者 山田 花子がデータマネジメントプランに責任を持ち、データ管理者 佐藤 健が"
                "アクセス権の付与と公開の手続きを担当する。\n\n"
                "The project manager, Hanako Yamada, is responsible for the plan; the data "
                "manager, Ken Sato, grants access and handles publication."
            ),
        },
    )


def _records(project: Project, embargo_until: date) -> dict[str, DmpRecord]:
    specs = [
        {
            "data_number": "D-001",
            "title_ja": "曝露モデルマウス肝臓組織の共焦点蛍光顕微鏡画像",
            "title_en": "Confocal fluorescence microscopy of liver tissue from exposure-model mice",
            "description_ja": "環境曝露モデルマウスの肝臓切片を DAPI と MitoTracker で染色し、"
            "共焦点顕微鏡で撮影した最大値投影画像と ROI ごとの計測値。",
            "description_en": "Maximum-intensity projections of liver sections from "
            "environmental-exposure model mice, stained with DAPI and MitoTracker and "
            "imaged by confocal microscopy, with measurements per region of interest.",
            "access_rights": Tier.PUBLIC,
            "metadata_access": MetadataAccess.OPEN,
        },
        {
            "data_number": "D-002",
            "title_ja": "曝露モデルマウス肝臓の RNA-seq リード (FASTQ)",
            "title_en": "RNA-seq reads (FASTQ) of liver from exposure-model mice",
            "description_ja": "曝露群と対照群のマウス肝臓から抽出した total RNA の 150 bp "
            "ペアエンド RNA-seq リード。論文公開まで公開期間猶予とする。",
            "description_en": "150 bp paired-end RNA-seq reads of total RNA from the livers "
            "of exposed and control mice. Embargoed until the paper is published.",
            "access_rights": Tier.EMBARGOED,
            "available_date": embargo_until,
            "metadata_access": MetadataAccess.OPEN,
        },
        {
            "data_number": "D-003",
            "title_ja": "コホート地域の農地土壌メタンフラックス測定データ",
            "title_en": "Methane flux from farmland soil in the cohort area",
            "description_ja": "クローズドチャンバー法による水田・畑地土壌からのメタンフラックス"
            " (mg CH4 m⁻² h⁻¹)、地温、水位の週次測定値。共同研究機関と共有する。",
            "description_en": "Weekly closed-chamber measurements of methane flux "
            "(mg CH4 m⁻² h⁻¹), soil temperature and water level in paddy and upland fields. "
            "Shared with partner institutions.",
            "access_rights": Tier.SHARED,
            "metadata_access": MetadataAccess.OPEN,
        },
        {
            "data_number": "D-004",
            "title_ja": "コホート参加者の脳 FDG-PET 画像 (仮名加工済み)",
            "title_en": "Brain FDG-PET images of cohort participants (pseudonymised)",
            "description_ja": "コホート参加者の脳 FDG-PET 画像。仮名加工済みだが個人情報を含む"
            "ため、倫理審査委員会が承認した範囲でのみ共有する。",
            "description_en": "Brain FDG-PET images of cohort participants. Pseudonymised, "
            "but still personal data, so shared only as far as the ethics approval allows.",
            "access_rights": Tier.SHARED,
            "metadata_access": MetadataAccess.CLOSED,
            "contains_personal_data": True,
        },
        {
            "data_number": "D-005",
            "title_ja": "コホート参加者対応表",
            "title_en": "Participant key table of the cohort",
            "description_ja": "仮名 ID と医療機関の患者 ID の対応表。データ管理者のみが扱う。",
            "description_en": "Links pseudonymous participant IDs to hospital patient IDs. "
            "Handled by the data manager only.",
            "access_rights": Tier.NON_SHARED,
            "metadata_access": MetadataAccess.CLOSED,
            "contains_personal_data": True,
        },
    ]
    # The items every record of the project shares: filled in, so the demo DMP is complete.
    common = {
        "date_issued_updated": timezone.localdate(),
        "data_type": "experimental data",
        "data_policy_free": "free",
        "data_policy_license": "CCBY",
        "data_policy_cite_ja": "山田花子ほか (2026) 蔵研究所リポジトリ.",
        "data_policy_cite_en": "Yamada H. et al. (2026) Kura Research Institute repository.",
        "repo_information_ja": "蔵研究所 研究データリポジトリ",
        "repo_information_en": "Kura Research Institute research data repository",
        "hosting_inst_ja": "国立研究開発法人 蔵研究所",
        "hosting_inst_en": "Kura Research Institute",
        "hosting_inst_id": "https://ror.org/0abcdef12",
        "data_man_number": "40598761",
        "data_man_name_ja": "佐藤 健",
        "data_man_name_en": "Ken Sato",
        "data_man_org_ja": "蔵研究所 データ管理室",
        "data_man_org_en": "Kura Research Institute, Data Management Office",
        "data_man_email": "data-office@kura.example.org",
    }
    records = {}
    for spec in specs:
        record = DmpRecord.objects.create(project=project, **{**common, **spec})
        record.creators.create(
            position=0,
            erad_researcher_number="90823456",
            name_ja="鈴木 陽菜",
            name_en="Hina Suzuki",
            affiliation_ja="蔵研究所",
            affiliation_en="Kura Research Institute",
        )
        # Its history starts here, as a record made through the forms would.
        record_revision_write(
            record=record, actor=None, kind=DmpRecordRevision.Kind.CREATED, before=None
        )
        records[spec["data_number"]] = record
    return records


def _data_object(
    *,
    project: Project,
    record: DmpRecord,
    uploaded_by: User,
    filename: str,
    content_type: str,
    data: bytes,
    tier: Tier,
    now,
    written: list[str],
    **fields,
) -> DataObject:
    """Write ``data`` through the configured storage and record it as stored and verified."""
    key = new_storage_key()
    content = ContentFile(data)
    content.content_type = content_type  # used by S3 storage for the object's Content-Type
    name = default_storage.save(key, content)
    written.append(name)
    if name != key:
        raise DemoDataError(f"Storage saved {key!r} as {name!r}; storage keys must be kept.")

    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with default_storage.open(key, "rb") as fh:
        read_back = fh.read()
    if hashlib.sha256(read_back).hexdigest() != sha256:
        raise DemoDataError(f"Storage returned different bytes for {key!r}.")
    # What the checksum pass extracts from an upload (techmeta), from the stored bytes.
    technical = small_object_scan(
        read_back, key, filename, extract_metadata=True, store=object_store()
    ).technical
    previewed = bool(preview_kind(technical.fields))
    if technical.contains_personal_data:
        fields["contains_personal_data"] = True

    data_object = DataObject.objects.create(
        project=project,
        record=record,
        uploaded_by=uploaded_by,
        storage_key=key,
        original_filename=filename,
        size=len(data),
        content_type=content_type,
        status=DataObject.Status.STORED,
        tier=tier,
        sha256=sha256,
        md5=md5,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        stored_at=now,
        last_fixity_at=now,
        technical_metadata=technical.fields,
        preview_state=(
            DataObject.PreviewState.PENDING if previewed else DataObject.PreviewState.NONE
        ),
        **fields,
    )
    if previewed:
        # As a verification does: once the load commits (kura.checksum_requeue sends it
        # again later if no broker took it).
        transaction.on_commit(lambda: preview_send(data_object.pk))
    FixityCheck.objects.create(
        data_object=data_object,
        checked_at=now,
        outcome=FixityCheck.Outcome.MATCH,
        sha256=sha256,
        md5=md5,
        size=len(read_back),
        detail=Message("fixity.demo_loaded"),
    )
    return data_object


# --- Generated file contents -----------------------------------------------------------


def _png(width: int, height: int, pixel) -> bytes:
    """A minimal 8-bit greyscale PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _microscopy_png(*, seed: int, size: int = 96) -> bytes:
    """Bright round 'nuclei' on a dark, slightly noisy background."""
    noise = os.urandom(size * size)
    centres = [
        ((17 * seed * (i + 3)) % size, (29 * seed * (i + 5)) % size, 5 + (i * seed) % 6)
        for i in range(9)
    ]

    def pixel(x: int, y: int) -> int:
        light = sum(
            200 * math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)) for cx, cy, r in centres
        )
        return min(255, int(12 + light + noise[y * size + x] % 16))

    return _png(size, size, pixel)


def _roi_csv() -> bytes:
    rows = ["roi_id,area_um2,dapi_mean,mitotracker_mean,mitochondria_count"]
    for i in range(1, 13):
        rows.append(f"{i},{40 + 7.5 * i:.1f},{1200 + 37 * i},{860 + 53 * (i % 5)},{18 + i % 7}")
    return ("\n".join(rows) + "\n").encode()


def _microscopy_tiff() -> bytes:
    """A confocal tile scan of a liver section: DAPI nuclei (blue) and MitoTracker-stained
    mitochondria (red, green) in an elliptical section on black, as a tiled, deflated RGB
    TIFF (numpy and tifffile: no libvips needed to load the demo)."""
    import numpy as np
    import tifffile

    width, height = TILESCAN_SIZE
    rng = np.random.default_rng(2024)
    pixels = np.zeros((height, width, 3), dtype=np.uint16)
    ys, xs = np.ogrid[:height, :width]
    across, down = (xs - width / 2) / (width * 0.46), (ys - height / 2) / (height * 0.44)
    section = across**2 + down**2 < 1
    for channel, autofluorescence in enumerate((14, 22, 10)):
        pixels[..., channel][section] = autofluorescence

    def spot(channel: int, x: int, y: int, radius: float, peak: int) -> None:
        reach = int(3 * radius)
        top, bottom = max(y - reach, 0), min(y + reach + 1, height)
        left, right = max(x - reach, 0), min(x + reach + 1, width)
        dy, dx = np.ogrid[top - y : bottom - y, left - x : right - x]
        glow = peak * np.exp(-(dx * dx + dy * dy) / (2 * radius * radius))
        pixels[top:bottom, left:right, channel] += glow.astype(np.uint16)

    for count, channels, radii, peaks in (
        (700, (2,), (9, 16), (150, 230)),  # nuclei
        (12_000, (0, 1), (1.5, 3), (60, 160)),  # mitochondria
    ):
        for _ in range(count):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            if section[y, x]:
                spot(int(rng.choice(channels)), x, y, rng.uniform(*radii), rng.integers(*peaks))
    image = np.minimum(pixels, 255).astype(np.uint8)
    out = io.BytesIO()
    tifffile.imwrite(out, image, tile=(256, 256), compression="zlib", photometric="rgb")
    return out.getvalue()


def _fastq_gz(*, reads: int, length: int = 150) -> bytes:
    """Illumina-like reads: qualities falling towards the 3' end, a tenth adapter-trimmed."""
    rng = random.Random(reads)  # noqa: S311 - demo reads, not secrets
    records = []
    for i in range(1, reads + 1):
        size = length if i % 10 else rng.randint(60, length - 1)
        sequence = "".join(rng.choices("ACGT", weights=(29, 21, 21, 29), k=size))
        quality = "".join(
            chr(33 + max(2, min(41, round(rng.gauss(38 - 8 * (p / length) ** 2, 2)))))
            for p in range(size)
        )
        records.append(
            f"@KURA-DEMO:1:HVK3LDSX2:1:1101:{1000 + i * 17}:{1000 + i * 31} 1:N:0:ACGTACGT\n"
            f"{sequence}\n+\n{quality}\n"
        )
    return gzip.compress("".join(records).encode(), mtime=0)


def _methane_csv(year: int) -> bytes:
    rows = ["site_id,land_use,date,chamber,ch4_flux_mg_m2_h,soil_temp_c,water_level_cm"]
    for week, day in enumerate((3, 10, 17, 24, 31)):
        for chamber in (1, 2, 3):
            rows.append(
                f"KR-P01,paddy,{year}-07-{day:02d},{chamber},"
                f"{8.5 + 3.1 * week + 0.7 * chamber:.2f},{24.0 + 0.6 * week:.1f},{5 - week % 2}"
            )
            rows.append(
                f"KR-U02,upland,{year}-07-{day:02d},{chamber},"
                f"{-0.04 + 0.01 * chamber:.2f},{25.5 + 0.5 * week:.1f},"
            )
    return ("\n".join(rows) + "\n").encode()


def _key_table_csv() -> bytes:
    rows = ["participant_id,hospital_patient_id,consent_date"]
    for i in range(1, 9):
        rows.append(f"P-{i:03d},DEMO-{4170 + 37 * i:07d},2024-05-{10 + i:02d}")
    return ("\n".join(rows) + "\n").encode()
