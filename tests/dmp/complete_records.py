"""DMP records with every common-metadata item filled in, for export and import tests."""

import datetime

from core.vocabularies import DataManagerType, Tier
from dmp.models import DmpRecord, RecordCreator


def complete_fields(number: int = 1, **overrides) -> dict:
    """Model fields of a record that lacks no required item (bilingual throughout)."""
    fields = {
        "data_number": f"D-{number:03d}",
        "title_ja": f"データ{number}の名称",
        "title_en": f"Dataset {number}",
        "date_issued_updated": datetime.date(2025, 4, number % 28 + 1),
        "description_ja": f'データ{number}の説明。\n二行目, カンマ "引用符" 付き。',
        "description_en": f'Description of dataset {number}.\nSecond line, with "quotes".',
        "data_research_field": "289",
        "data_type": "experimental data",
        "file_size": "1-10GB",
        "data_policy_free": "free",
        "data_policy_license": "CCBY",
        "data_policy_cite_ja": "山田 (2025) を引用すること",
        "data_policy_cite_en": "Cite Yamada (2025)",
        "access_rights": Tier.PUBLIC,
        "available_date": None,
        "repo_information_ja": "蔵リポジトリ",
        "repo_information_en": "Kura repository",
        "repo_url_doi_link": f"https://doi.org/10.1234/kura.{number}",
        "hosting_inst_ja": "国立研究開発法人 蔵研究所",
        "hosting_inst_en": "Kura Research Institute",
        "hosting_inst_id": "https://ror.org/0abcdef12",
        "data_man_type": DataManagerType.INDIVIDUAL,
        "data_man_number": "40598761",
        "data_man_name_ja": "佐藤 健",
        "data_man_name_en": "Ken Sato",
        "data_man_org_ja": "蔵研究所 データ管理室",
        "data_man_org_en": "Data Office, Kura Research Institute",
        "data_man_address_ja": "東京都千代田区1-1",
        "data_man_address_en": "1-1 Chiyoda, Tokyo",
        "data_man_tel": "03-1234-5678",
        "data_man_email": "data@kura.example.jp",
        "remarks_ja": "備考なし",
        "remarks_en": "No remarks",
    }
    fields.update(overrides)
    if fields["access_rights"] == Tier.EMBARGOED and fields["available_date"] is None:
        fields["available_date"] = datetime.date(2030, 1, 15)
    return fields


CREATORS = [
    {
        "erad_researcher_number": "70312345",
        "name_ja": "山田 花子",
        "name_en": "Hanako Yamada",
        "affiliation_ja": "蔵研究所",
        "affiliation_en": "Kura Research Institute",
    },
    {
        "erad_researcher_number": "",
        "name_ja": "鈴木 陽菜",
        "name_en": "Hina Suzuki",
        "affiliation_ja": "",
        "affiliation_en": "",
    },
]


def complete_record(project, number: int = 1, creators=CREATORS, **overrides) -> DmpRecord:
    record = DmpRecord.objects.create(project=project, **complete_fields(number, **overrides))
    for position, creator in enumerate(creators):
        RecordCreator.objects.create(record=record, position=position, **creator)
    return record
