"""Reference data the generator draws from: code lists, name and address pools, region codes.

Everything here is static or built once per run from a seeded Faker (a bounded number of
calls); per-record values are then sampled from these pools with numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from shuzhi.schemas import catalog

DISTRICT = "150105"
DISTRICT_PREFIX = "内蒙古自治区呼和浩特市赛罕区"

# ---------------------------------------------------------------- codes (SPEC / GB/T) ----
# The code lists themselves come from schemas/code_lists.yaml; only the draw weights live here.
_CODES = catalog().code_lists
SEX_CODES = tuple(_CODES["sex"].codes)
RELATION_HEAD, RELATION_SPOUSE, RELATION_CHILD, RELATION_PARENT, RELATION_OTHER = tuple(_CODES["relation"].codes)
# GB/T 3304: 01 Han, 02 Mongol, 03 Hui, 05 Uyghur, 10 Korean, 11 Manchu, 31 Daur, 45 Evenki
ETHNICITY_WEIGHTS = {"01": 0.80, "02": 0.135, "03": 0.03, "11": 0.02, "31": 0.004, "45": 0.003,
                     "05": 0.004, "10": 0.004}
INCIDENT_CATEGORIES = tuple(_CODES["incident_category"].codes)
INCIDENT_WEIGHTS = (0.30, 0.14, 0.08, 0.04, 0.16, 0.18, 0.10)
assert len(INCIDENT_WEIGHTS) == len(INCIDENT_CATEGORIES) and set(ETHNICITY_WEIGHTS) <= set(_CODES["ethnicity"].codes)

# Values that are not in the code lists (planted as code_unknown); field -> candidates.
UNKNOWN_CODES = {
    "sex": ("3", "5", "6"),
    "ethnicity": ("00", "60", "77", "88"),
    "relation": ("00", "03", "07"),
    "person_status": ("3", "5"),
    "house_use": ("0", "5", "7"),
    "incident_category": ("00", "07", "15"),
    "handling_status": ("0", "4"),
    "assistance_type": ("LINSHI", "WUBAO"),
    "case_status": ("CLOSED", "PENDING"),
    "insurance_type": ("510", "999"),
    "enrolment_status": ("4", "9"),
}

# ICD-10 chronic conditions with prevalence by age band (<40, 40-59, 60+).
CHRONIC = (
    ("I10", (0.02, 0.16, 0.42)),   # hypertension
    ("E11", (0.005, 0.07, 0.16)),  # type 2 diabetes
    ("E78", (0.01, 0.06, 0.11)),   # hyperlipidaemia
    ("I25", (0.0, 0.02, 0.08)),    # chronic ischaemic heart disease
    ("J44", (0.0, 0.015, 0.07)),   # COPD
    ("I63", (0.0, 0.008, 0.035)),  # cerebral infarction
    ("N18", (0.002, 0.008, 0.025)),  # chronic kidney disease
    ("M17", (0.0, 0.02, 0.06)),    # knee osteoarthritis
    ("J45", (0.015, 0.015, 0.02)),  # asthma
    ("F20", (0.003, 0.004, 0.003)),  # schizophrenia (severe mental disorder register)
    ("C34", (0.0, 0.002, 0.006)),  # lung cancer
)

# ---------------------------------------------------------------- places ----
STREET_NAMES = ("大学西路", "大学东路", "乌兰察布东路", "中专路", "人民路", "昭乌达路", "敕勒川路",
                "鄂尔多斯大街", "巴彦淖尔南路", "长乐宫")
ROAD_NAMES = ("大学东街", "大学西街", "昭乌达路", "新华东街", "乌兰察布东街", "鄂尔多斯大街", "巴彦淖尔南路",
              "丰州路", "新建东街", "展东路", "呼伦贝尔南路", "兴安南路", "金桥路", "金盛路", "敕勒川大街",
              "腾飞南路", "世纪五路", "世纪七路", "石羊桥东路", "南二环快速路", "南店子路", "讨号板路",
              "文化宫街", "体育场南街", "学苑东街", "锡林南路")
COMPOUND_SUFFIXES = ("小区", "家园", "花园", "新村", "嘉园", "公寓", "佳苑", "雅居", "名都", "府")
COMPOUND_STEMS = ("阳光", "金桥", "丽苑", "民族", "财大", "农大", "内大", "富丽", "巨海", "万达", "恒大",
                  "锦绣", "东岸", "泰和", "滨河", "紫金", "盛世", "蒙欣", "广厦", "如意", "和谐", "嘉茂",
                  "新城", "园丁", "天骄", "城发", "绿地", "康居", "安泰", "福润", "兴泰", "祥和")

# Where identity numbers come from. GB 11643: the address code is the county of the holder's
# household registration *when the number was assigned* (first issue 1984-1985; later numbers at
# registration after birth or with the first card), and the holder keeps it when the county is
# renamed, merged or abolished. So a place is the succession of its GB/T 2260 codes (their years
# are python-stdnum's cn/loc table) and a number gets the code in force in its assignment year:
# elderly locals carry 150105 although stdnum dates it from 1983, and people registered in 武川县
# before 1996 carry 152621 although that code is gone.
FIRST_ISSUE_YEAR = 1984
HOME = (DISTRICT,)     # 呼和浩特 郊区 1983-1999, renamed 赛罕区 2000: one code throughout
# Places of other household registrations (and of locals who got their number elsewhere), weighted.
ORIGINS = (
    (("150121",), 0.10),              # 呼和浩特 土默特左旗 (no dates)
    (("150122",), 0.05),              # 呼和浩特 托克托县 (no dates)
    (("152621", "150125"), 0.04),     # 武川县: 乌兰察布盟 until 1996, 呼和浩特 from 1996
    (("152622", "150123"), 0.03),     # 和林格尔县: until 1995, then 呼和浩特
    (("152623", "150124"), 0.02),     # 清水河县: until 1995, then 呼和浩特
    (("152633", "150223"), 0.02),     # 达尔罕茂明安联合旗: until 1996, then 包头
    (("150221",), 0.05), (("150222",), 0.03),   # 包头 土默特右旗, 固阳县 (no dates)
    (("150421",), 0.02),              # 赤峰 阿鲁科尔沁旗 (from 1983)
    (("140112", "140105"), 0.05),     # 太原 南郊区 1983-1997 → 小店区 1997-
    (("140202", "140213"), 0.03),     # 大同 城区 1983-2018 → 平城区 2018-
    (("130102",), 0.04), (("130702",), 0.03),   # 石家庄 长安区, 张家口 桥东区 (from 1983)
    (("133001", "131102"), 0.02),     # 衡水市 1982-1996 → 衡水市 桃城区 1996-
    (("610102",), 0.04),              # 西安 新城区
    (("640102", "640104"), 0.03),     # 银川 城区 1983-2002 → 兴庆区 2002-
    (("620102",), 0.03), (("230102",), 0.04), (("220102",), 0.03), (("210102",), 0.03),
    (("110105",), 0.04),              # 北京 朝阳区 (no dates)
    (("370102",), 0.03), (("410102",), 0.04), (("120101",), 0.02),
    (("510102", "510104"), 0.02),     # 成都 东城区 1983-1990 → 锦江区 1990-
    (("320102",), 0.02), (("340102",), 0.02),
)
# Planted as id_bad_region: prefixes that are no GB/T 2260 code at all ...
BAD_REGIONS = ("990105", "000105", "150106", "150199", "159901", "350199")
# ... and real codes abolished before some holders could have been given a number: the 市区 codes
# ended in 1983 (before the first issue, so wrong for everyone), the others are wrong for numbers
# of persons born after their last year.
ABOLISHED_REGIONS = ("150120", "140120", "640120", "152621", "133001", "640102", "510102")

# ---------------------------------------------------------------- names ----
MALE_CHARS = tuple("伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林国建志文海东峰亮成兵晨阳宏振"
                   "春永德庆荣贵福生忠金义光天博泽轩睿昊然一嘉铭瑞晓云雷鸿伦毅凡卫进胜宝继")
FEMALE_CHARS = tuple("芳娜敏静秀丽艳娟霞燕玲桂英丹萍红玉兰梅莉珍婷凤晶颖雪琳洁慧欣佳怡涵萱雨思梦月婉倩璐瑶"
                     "琪悦蕾薇彤诗春美淑华云爱亚欢韵馨乐")
MONGOL_GIVEN = ("巴特尔", "其其格", "乌日娜", "额尔敦", "苏和", "阿拉坦", "朝鲁", "斯琴", "萨仁", "图雅", "那仁",
                "宝音", "乌兰", "格日勒", "孟和", "敖登", "巴图", "哈斯", "呼和", "娜仁花", "其木格", "乌力吉",
                "布和", "达来", "毕力格", "青格勒", "塔娜", "额尔德尼", "乌云", "阿木尔", "特木尔", "苏日娜")
MONGOL_SURNAMES = ("包", "白", "韩", "鲍", "吴", "王", "云", "奇", "巴", "宝")
MONGOL_CLANS = ("孛儿只斤", "博尔济吉特", "乌梁海", "巴林", "鄂托克")
UYGHUR_GIVEN = ("买买提", "艾力", "阿卜杜拉", "吐尔逊", "热依拉", "古丽", "努尔", "阿依努尔", "帕提古丽",
                "阿布都", "伊力哈木", "迪丽娜尔")

# Simplified -> traditional for characters in the name pools (used for name_traditional).
TRADITIONAL = dict(zip(
    "张陈刘杨黄赵吴孙马罗郑谢韩冯邓许苏卢蒋贾叶阎钟陆邹龚萧吕谭顾龙万钱汤乔贺赖庞兰颜严温芦鲁韦毕聂丛庄齐"
    "时关费纪欧项阳卫鲍单宁闵华车边饶晋邬畅宫来简娄盖党谈连栾计窦迟蓝巩练乐应荆谌银扬习蔺"
    "伟强军杰涛辉鹏飞凯帅国东庆荣贵义泽轩铭晓云鸿伦丽艳兰凤颖洁梦瑶诗刚红静进胜宝继爱亚欢韵乐"
    "尔乌额鲁萨图达儿买热逊济",
    "張陳劉楊黃趙吳孫馬羅鄭謝韓馮鄧許蘇盧蔣賈葉閻鍾陸鄒龔蕭呂譚顧龍萬錢湯喬賀賴龐蘭顏嚴溫蘆魯韋畢聶叢莊齊"
    "時關費紀歐項陽衛鮑單寧閔華車邊饒晉鄔暢宮來簡婁蓋黨談連欒計竇遲藍鞏練樂應荊諶銀揚習藺"
    "偉強軍傑濤輝鵬飛凱帥國東慶榮貴義澤軒銘曉雲鴻倫麗艷蘭鳳穎潔夢瑤詩剛紅靜進勝寶繼愛亞歡韻樂"
    "爾烏額魯薩圖達兒買熱遜濟"))
_TRAD_TABLE = str.maketrans(TRADITIONAL)


def to_traditional(name: str) -> str:
    """The traditional-character spelling of a simplified name (unchanged if no char maps)."""
    return name.translate(_TRAD_TABLE)


def has_traditional(name: str) -> bool:
    return any(ch in TRADITIONAL for ch in name)


# ---------------------------------------------------------------- GB/T 2260 table ----
@lru_cache(maxsize=1)
def region_table() -> dict[str, tuple[str, str, tuple[tuple[int, int], ...]]]:
    """code -> (province, county, validity periods) from python-stdnum's GB/T 2260 table.

    A period is (first year, last year); an empty tuple means no dates (in force throughout)."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    out: dict[str, tuple[str, str, tuple[tuple[int, int], ...]]] = {}
    province, pcode = "", ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            pcode, rest = line.split(" ", 1)
            province = rest.split('"')[1]
            continue
        code, rest = line.strip().split(" ", 1)
        names = rest.split('"')[1].split(",")
        periods = []
        for n in names:
            if not n.startswith("["):
                periods = []
                break
            start, end = n[1:].split("]", 1)[0].split("-")
            periods.append((int(start) if start else 0, int(end) if end else 9999))
        county = names[-1].split("]", 1)[-1]
        out[pcode + code] = (province, county, tuple(periods))
    return out


def in_force(code: str, years: np.ndarray) -> np.ndarray:
    """Whether ``code`` is a GB/T 2260 code in force in each of ``years`` (unknown codes: never)."""
    entry = region_table().get(code)
    years = np.asarray(years)
    if entry is None:
        return np.zeros(len(years), dtype=bool)
    if not entry[2]:
        return np.ones(len(years), dtype=bool)
    ok = np.zeros(len(years), dtype=bool)
    for start, end in entry[2]:
        ok |= (years >= start) & (years <= end)
    return ok


def last_year(code: str) -> int:
    """The last year ``code`` was in force (9999: still in force; -1: unknown code)."""
    entry = region_table().get(code)
    if entry is None:
        return -1
    return max((end for _, end in entry[2]), default=9999)


def place_codes(place: tuple[str, ...], years: np.ndarray) -> np.ndarray:
    """The code ``place`` had in each year: the latest of its succession in force that year.

    >>> place_codes(("152621", "150125"), np.array([1985, 1996, 2010])).tolist()
    ['152621', '150125', '150125']
    """
    years = np.asarray(years)
    out = np.full(len(years), None, dtype=object)
    for code in place:
        out[in_force(code, years)] = code
    if any(v is None for v in out):
        missing = sorted({int(y) for y, v in zip(years, out) if v is None})
        raise ValueError(f"no code of {place} in force in {missing}")
    return out


def assignment_years(birth_years: np.ndarray, this_year: int, rng: np.random.Generator) -> np.ndarray:
    """The year each person's number was assigned: 1984 or 1985 for those born earlier (the
    first issue), otherwise at household registration after birth or at the first card (up to
    16 years after birth) — never after ``this_year``."""
    n = len(birth_years)
    later = birth_years + rng.integers(0, 17, n)
    first = FIRST_ISSUE_YEAR + rng.integers(0, 2, n)
    return np.minimum(np.maximum(later, first), this_year)


def abolished_before(birth_year: int) -> tuple[str, ...]:
    """Codes of ``ABOLISHED_REGIONS`` that no number encoding ``birth_year`` can carry: their
    last year lies before the holder could have been given one."""
    return tuple(c for c in ABOLISHED_REGIONS if last_year(c) < max(birth_year, FIRST_ISSUE_YEAR))


# ---------------------------------------------------------------- pools built with Faker ----
@dataclass(frozen=True)
class Pools:
    surnames: np.ndarray          # object
    surname_weights: np.ndarray   # float, sums to 1
    male_given: np.ndarray
    female_given: np.ndarray
    faker_streets: np.ndarray
    companies: np.ndarray
    company_stems: np.ndarray


def build_pools(seed: int) -> Pools:
    """Name/address/company pools: Faker is called a bounded number of times (≈1,500)."""
    from faker import Faker
    from faker.providers.person.zh_CN import Provider as PersonProvider

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = np.random.default_rng([seed, 11])
    last = PersonProvider.last_names
    surnames = np.array([s for s in last if len(s) == 1], dtype=object)
    w = np.array([last[s] for s in surnames], dtype=float)
    # single-char given names from Faker's lists plus two-char combinations
    male = list(dict.fromkeys(list(PersonProvider.first_names_male) + [
        a + b for a, b in zip(rng.choice(MALE_CHARS, 900), rng.choice(MALE_CHARS, 900)) if a != b]))
    female = list(dict.fromkeys(list(PersonProvider.first_names_female) + [
        a + b for a, b in zip(rng.choice(FEMALE_CHARS, 900), rng.choice(FEMALE_CHARS, 900)) if a != b]))
    streets = list(dict.fromkeys(fake.street_name() for _ in range(300)))
    companies = list(dict.fromkeys(fake.company() for _ in range(600)))
    stems = list(dict.fromkeys(fake.company_prefix() for _ in range(300)))
    return Pools(surnames=surnames, surname_weights=w / w.sum(), male_given=np.array(male, dtype=object),
                 female_given=np.array(female, dtype=object), faker_streets=np.array(streets, dtype=object),
                 companies=np.array(companies, dtype=object), company_stems=np.array(stems, dtype=object))
