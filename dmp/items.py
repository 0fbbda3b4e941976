"""Official names of the Cabinet Office common metadata items, in Japanese and English.

Like the vocabulary labels, these are published by the funders in both languages
(docs/metadata.md, "Common metadata items"), so they are data rather than interface
strings: the form shows the one that matches the page's language. Bilingual items are
keyed by their stem (``title`` for ``title_ja`` / ``title_en``).
"""

from django.utils.translation import gettext_lazy as _

from core.vocabularies import Term

ITEM_NAMES = {
    term.code: term
    for term in [
        Term("data_number", "データNo.", "Data No."),
        Term("title", "データの名称", "Data Title"),
        Term("description", "データの説明", "Description"),
        Term("date_issued_updated", "掲載日・掲載更新日", "Date (Issued / Updated)"),
        Term("data_research_field", "データの分野", "Research field"),
        Term("data_type", "データ種別", "Data type"),
        Term("file_size", "概略データ量", "File size"),
        Term("data_policy_free", "有償/無償", "Fee-based/Free"),
        Term("data_policy_license", "ライセンス", "License"),
        Term("data_policy_cite", "引用方法等", "Citation information"),
        Term("access_rights", "アクセス権", "Access rights"),
        Term("available_date", "公開予定日", "Available Date"),
        Term("repo_information", "リポジトリ情報", "Repository information"),
        Term("repo_url_doi_link", "リポジトリURL・DOIリンク", "Repository URL/ DOI link"),
        Term("creators", "データ作成者", "Creator Name"),
        Term("hosting_inst", "データ管理機関", "Hosting institution"),
        Term("hosting_inst_id", "データ管理機関コード", "Hosting institution Identifier"),
        Term("data_man_type", "データ管理者の種類", "Type of data manager"),
        Term("data_man_number", "e-Rad研究者番号", "e-Rad Researcher Number"),
        Term("data_man_name", "データ管理者", "Data manager"),
        Term("data_man_org", "データ管理者の所属組織名", "Contact organization of data manager"),
        Term(
            "data_man_address",
            "データ管理者の所属機関の連絡先住所",
            "Contact address of data manager",
        ),
        Term(
            "data_man_tel",
            "データ管理者の所属機関の連絡先電話番号",
            "Contact phone number of data manager",
        ),
        Term(
            "data_man_email",
            "データ管理者の所属機関の連絡先メールアドレス",
            "Contact mail address of data manager",
        ),
        Term("remarks", "備考", "Remarks"),
    ]
}


def item_stem(field_name: str) -> str:
    """``title_ja`` → ``title``; single-valued names are returned unchanged."""
    for suffix in ("_ja", "_en"):
        if field_name.endswith(suffix) and field_name[: -len(suffix)] in ITEM_NAMES:
            return field_name[: -len(suffix)]
    return field_name


def item_label(field_name: str, language: str | None = None) -> str:
    """The official name of the item ``field_name`` belongs to, else the name itself."""
    term = ITEM_NAMES.get(item_stem(field_name))
    return term.label(language) if term else field_name


# (legend, field names) in the order of the funders' CSV report; a pair is its stem.
FIELDSETS = (
    (
        "basic",
        _("Basic information"),
        (
            "data_number",
            "title",
            "description",
            "date_issued_updated",
            "data_research_field",
            "data_type",
            "file_size",
        ),
    ),
    (
        "policy",
        _("Utilisation and provision policy"),
        ("data_policy_free", "data_policy_license", "data_policy_cite"),
    ),
    (
        "access",
        _("Access"),
        (
            "access_rights",
            "available_date",
            "metadata_access",
            "contains_personal_data",
            "anonymisation_attested",
        ),
    ),
    ("repository", _("Repository"), ("repo_information", "repo_url_doi_link")),
    ("hosting", _("Hosting institution"), ("hosting_inst", "hosting_inst_id")),
    (
        "data-manager",
        _("Data manager"),
        (
            "data_man_type",
            "data_man_number",
            "data_man_name",
            "data_man_org",
            "data_man_address",
            "data_man_tel",
            "data_man_email",
        ),
    ),
    ("remarks", _("Remarks"), ("remarks",)),
)
