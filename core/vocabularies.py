"""Controlled vocabularies of the Cabinet Office common metadata items.

Codes are what Kura stores; labels are bilingual (ja, en) as the funders publish them.
See docs/metadata.md, "Access rights" and "Vocabularies".
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Term:
    code: str
    label_ja: str
    label_en: str
    erad_code: str = ""
    uri: str = ""
    crossref_funder_id: str = ""  # funders: the Crossref Funder ID (a DOI, 10.13039/...)
    spdx: str = ""  # licences: the SPDX licence identifier

    def label(self, language: str | None = None) -> str:
        language = language or get_language() or "en"
        return self.label_ja if language.startswith("ja") else self.label_en


class Vocabulary:
    """An ordered set of terms with a lookup by code and Django ``choices``."""

    def __init__(self, terms: list[Term]):
        self.terms = terms
        self._by_code = {t.code: t for t in terms}

    def __getitem__(self, code: str) -> Term:
        return self._by_code[code]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self):
        return iter(self.terms)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(t.code, f"{t.label_ja} | {t.label_en}") for t in self.terms]


class Tier(models.TextChoices):
    """Access tier of a data object; also the declared access rights of a DmpRecord."""

    PUBLIC = "public", _("Public")
    EMBARGOED = "embargoed", _("Embargoed")
    SHARED = "shared", _("Shared")
    NON_SHARED = "non_shared", _("Non-shared / non-public")


ACCESS_RIGHTS = Vocabulary(
    [
        Term("public", "公開", "open access", uri="http://purl.org/coar/access_right/c_abf2"),
        Term(
            "embargoed",
            "公開期間猶予",
            "embargoed access",
            uri="http://purl.org/coar/access_right/c_f1cf",
        ),
        Term("shared", "共有", "restricted access", uri="http://purl.org/coar/access_right/c_16ec"),
        Term(
            "non_shared",
            "非共有・非公開",
            "metadata only access",
            uri="http://purl.org/coar/access_right/c_14cb",
        ),
    ]
)


class MetadataAccess(models.TextChoices):
    """Who may read a record's metadata (v2 ``metadata-access-rights``)."""

    OPEN = "open", _("Open")
    RESTRICTED = "restricted", _("Restricted")
    CLOSED = "closed", _("Closed")


# Crossref Funder IDs (Open Funder Registry DOIs), stored only where a reference confirms
# them; a funder without one is identified by its e-Rad code (docs/metadata.md, "Funders"):
# - JST 10.13039/501100002241: Crossref funding metadata of JST awards ("Japan Science and
#   Technology Agency"), as harvested by OpenAlex and Crossref clients, and the JPCOAR
#   funder-identifier examples that place it under MEXT;
# - JSPS 10.13039/501100001691: ROR's guide to the Open Funder Registry's move to ROR
#   ("a single Funder ID ... and a single corresponding ROR ID", https://ror.org/00hhkn466);
# - MEXT 10.13039/501100001700: a Crossref deposit's funder_identifier assertion for the
#   "Ministry of Education, Culture, Sports, Science and Technology", and WEKO's (RCOSDP/weko)
#   JPCOAR example for 文部科学省;
# - AMED 10.13039/100009619: a funder open-access policy list naming JSPS, JST and AMED by
#   their Funder IDs (its JSPS and JST ids agree with the sources above).
# NEDO and BRAIN (under NARO) and the other funders could not be confirmed offline.
FUNDERS = Vocabulary(
    [
        Term(
            "AMED",
            "国立研究開発法人日本医療研究開発機構",
            "Japan Agency for Medical Research and Development",
            "303",
            crossref_funder_id="10.13039/100009619",
        ),
        Term("MOD", "防衛省", "Ministry of Defense", "501"),
        Term("NRA", "原子力規制庁", "Nuclear Regulation Authority", "1503"),
        Term(
            "ERCA",
            "独立行政法人環境再生保全機構",
            "Environmental Restoration and Conservation Agency",
            "1502",
        ),
        Term("CAO", "内閣府", "Cabinet Office", "301"),
        Term("SOUMU", "総務省", "Ministry of Internal Affairs and Communications", "601"),
        Term("FDMA", "消防庁", "Fire and Disaster Management Agency", "605"),
        Term(
            "NICT",
            "国立研究開発法人情報通信研究機構",
            "National Institute of Information and Communications Technology",
            "615",
        ),
        Term(
            "MEXT",
            "文部科学省",
            "Ministry of Education",
            "1001",
            crossref_funder_id="10.13039/501100001700",
        ),
        Term(
            "JST",
            "国立研究開発法人科学技術振興機構",
            "Japan Science and Technology Agency",
            "1020",
            crossref_funder_id="10.13039/501100002241",
        ),
        Term(
            "JSPS",
            "独立行政法人日本学術振興会",
            "Japan Society for the Promotion of Science",
            "1025",
            crossref_funder_id="10.13039/501100001691",
        ),
        Term("MHLW", "厚生労働省", "Ministry of Health", "1101"),
        Term("MAFF", "農林水産省", "Ministry of Agriculture", "1201"),
        Term("PRIMAFF", "農林水産省農林水産政策研究所", "Policy Research Institute", "1203"),
        Term(
            "NARO",
            "国立研究開発法人農業・食品産業技術総合研究機構",
            "National Agriculture and Food Research Organization",
            "1205",
        ),
        Term("METI", "経済産業省", "Ministry of Economy", "1301"),
        Term(
            "NEDO",
            "国立研究開発法人新エネルギー・産業技術総合開発機構",
            "New Energy and Industrial Technology Development Organization",
            "1305",
        ),
        Term("MLIT", "国土交通省", "Ministry of Land", "1401"),
        Term(
            "NILIM",
            "国土技術政策総合研究所",
            "National Institute for Land and Infrastructure Management",
            "1405",
        ),
        Term("ENV", "環境省", "Ministry of the Environment", "1501"),
        Term(
            "BIBIOHN",
            "国立研究開発法人医薬基盤・健康・栄養研究所",
            "National Institutes of Biomedical Innovation",
            "1106",
        ),
    ]
)

RESEARCH_FIELDS = Vocabulary(
    [
        Term("189", "ライフサイエンス", "Life Science"),
        Term("289", "情報通信", "Informatics"),
        Term("389", "環境", "Environmental Science"),
        Term("489", "ナノテク・材料", "Nanotechnology/Materials"),
        Term("589", "エネルギー", "Energy Engineering"),
        Term("689", "ものづくり技術", "Manufacturing Technology"),
        Term("789", "社会基盤", "Social Infrastructure"),
        Term("889", "フロンティア", "Frontier Technology"),
        Term("900", "人文・社会", "Humanities & Social Sciences"),
        Term("1000", "自然科学一般", "Natural Science"),
        Term("9999", "その他", "Others"),
    ]
)

DATA_TYPES = Vocabulary(
    [
        Term(
            "dataset", "データセット", "dataset", uri="http://purl.org/coar/resource_type/63NG-B465"
        ),
        Term("aggregated data", "集計データ", "aggregated data"),
        Term("clinical trial data", "臨床試験データ", "clinical trial data"),
        Term("compiled data", "編集データ", "compiled data"),
        Term("encoded data", "符号化データ", "encoded data"),
        Term("experimental data", "実験データ", "experimental data"),
        Term("genomic data", "ゲノムデータ", "genomic data"),
        Term("geospatial data", "地理空間データ", "geospatial data"),
        Term("laboratory notebook", "実験ノート", "laboratory notebook"),
        Term("measurement and test data", "測定・評価データ", "measurement and test data"),
        Term("observational data", "観測データ", "observational data"),
        Term("recorded data", "記録データ", "recorded data"),
        Term("simulation data", "シミュレーションデータ", "simulation data"),
        Term("survey data", "調査データ", "survey data"),
    ]
)

# SPDX identifiers (https://spdx.org/licenses/) where the licence and its version are
# unambiguous. The GPL and LGPL terms have none: the record does not say "only" or "or later".
LICENSES = Vocabulary(
    [
        Term("NO_LICENSE", "ライセンスなし", "No license"),
        Term(
            "CC0",
            "CC0 1.0",
            "CC0 1.0",
            uri="https://creativecommons.org/publicdomain/zero/1.0/",
            spdx="CC0-1.0",
        ),
        Term(
            "CCBY",
            "CC BY 4.0",
            "CC BY 4.0",
            uri="https://creativecommons.org/licenses/by/4.0/",
            spdx="CC-BY-4.0",
        ),
        Term(
            "CCBYSA",
            "CC BY-SA 4.0",
            "CC BY-SA 4.0",
            uri="https://creativecommons.org/licenses/by-sa/4.0/",
            spdx="CC-BY-SA-4.0",
        ),
        Term(
            "CCBYND",
            "CC BY-ND 4.0",
            "CC BY-ND 4.0",
            uri="https://creativecommons.org/licenses/by-nd/4.0/",
            spdx="CC-BY-ND-4.0",
        ),
        Term(
            "CCBYNC",
            "CC BY-NC 4.0",
            "CC BY-NC 4.0",
            uri="https://creativecommons.org/licenses/by-nc/4.0/",
            spdx="CC-BY-NC-4.0",
        ),
        Term(
            "CCBYNCSA",
            "CC BY-NC-SA 4.0",
            "CC BY-NC-SA 4.0",
            uri="https://creativecommons.org/licenses/by-nc-sa/4.0/",
            spdx="CC-BY-NC-SA-4.0",
        ),
        Term(
            "CCBYNCND",
            "CC BY-NC-ND 4.0",
            "CC BY-NC-ND 4.0",
            uri="https://creativecommons.org/licenses/by-nc-nd/4.0/",
            spdx="CC-BY-NC-ND-4.0",
        ),
        Term(
            "AFL",
            "AFL 3.0",
            "Academic Free License 3.0",
            uri="https://opensource.org/license/afl-3-0-php",
            spdx="AFL-3.0",
        ),
        Term("PD", "パブリックドメイン", "Public domain"),
        Term("MIT", "MIT", "MIT License", uri="https://opensource.org/license/mit", spdx="MIT"),
        Term(
            "Apache2",
            "Apache 2.0",
            "Apache License 2.0",
            uri="https://www.apache.org/licenses/LICENSE-2.0",
            spdx="Apache-2.0",
        ),
        Term(
            "BSD2",
            "BSD 2-Clause",
            "BSD 2-Clause License",
            uri="https://opensource.org/license/bsd-2-clause",
            spdx="BSD-2-Clause",
        ),
        Term(
            "BSD3",
            "BSD 3-Clause",
            "BSD 3-Clause License",
            uri="https://opensource.org/license/bsd-3-clause",
            spdx="BSD-3-Clause",
        ),
        Term(
            "GPL3",
            "GPL 3.0",
            "GNU General Public License 3.0",
            uri="https://www.gnu.org/licenses/gpl-3.0.html",
        ),
        Term(
            "GPL2",
            "GPL 2.0",
            "GNU General Public License 2.0",
            uri="https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
        ),
        Term(
            "Artistic2",
            "Artistic 2.0",
            "Artistic License 2.0",
            uri="https://opensource.org/license/artistic-2-0",
            spdx="Artistic-2.0",
        ),
        Term(
            "Eclipse1",
            "EPL 1.0",
            "Eclipse Public License 1.0",
            uri="https://www.eclipse.org/legal/epl-v10.html",
            spdx="EPL-1.0",
        ),
        Term(
            "LGPL3",
            "LGPL 3.0",
            "GNU Lesser General Public License 3.0",
            uri="https://www.gnu.org/licenses/lgpl-3.0.html",
        ),
        Term(
            "LGPL2_1",
            "LGPL 2.1",
            "GNU Lesser General Public License 2.1",
            uri="https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
        ),
        Term(
            "Mozilla2",
            "MPL 2.0",
            "Mozilla Public License 2.0",
            uri="https://www.mozilla.org/en-US/MPL/2.0/",
            spdx="MPL-2.0",
        ),
        Term("OTHER", "その他", "Other"),
    ]
)

DATA_POLICY_FREE = Vocabulary(
    [Term("free", "無償", "free"), Term("consideration", "有償", "fee-based")]
)


# ``data_research_field`` may defer to the project's research field.
SAME_AS_PROJECT = "project"


class DataManagerType(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    ORGANIZATION = "organization", _("Organization")
