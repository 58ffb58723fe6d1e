"""Score one night of the pipeline (clean + cross-verify) against the generator's ground truth.

    >>> s = score_night(spark, settings, settings.truth, "2026-11-27")       # doctest: +SKIP
    >>> print(s.table())                                                     # doctest: +SKIP

What is compared (all mappings are the module-level dicts below):

- record-level classes, keyed ``(source, file, row)``: truth rows against our hits — clean findings
  (``silver/findings``) and ingest quarantine rows (``bronze/quarantine``). A truth row is a true
  positive when a hit at the same position maps to its class *and* has the matching action; a hit
  with no such truth row is a false positive (under its class, or ``rule:<ID>`` for a rule id that
  maps to no class). Hits are counted once per (position, class, action), not once per field.
- ``name_traditional`` (tolerated): the record was loaded (not quarantined at ingest or clean)
  and no open ``X_NAME_MISMATCH`` conflict cites it.
- file-level classes (``bom``, ``encoding_utf8_as_gb18030``) against ``ops/deliveries``.
- persistent classes (cross-department contradictions, duplicate persons) against the open rows of
  ``gold/conflicts``; for precision only the open rows citing a record delivered tonight count.
  ``contra_uscc_bad_check`` is scored twice: against the register (class key as is) and against the
  clean stage's ``USCC_CHECK`` findings (class key ``contra_uscc_bad_check@clean``; only truth rows
  that locate the record in tonight's files are expected there).
- accounting: every delivered record is in the ingest quarantine, the clean quarantine, a
  supersede finding, or (by record id) the silver table; anything else is unaccounted.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from shuzhi.delta import read_table, table_exists

from .defects import ACTIONS, CORRECTED, FILE_LEVEL, FLAGGED, PERSISTENT, QUARANTINED

# ---------------------------------------------------------------- mappings ----

#: clean-stage rule id (silver/findings.rule_id) -> defect class
FINDING_RULES: dict[str, str] = {
    "ID_FULLWIDTH": "id_fullwidth", "ID_SEPARATOR": "id_separators", "ID_LOWER_X": "id_lowercase_x",
    "ID_LEGACY_15": "id_15_digit", "ID_CHECK": "id_bad_check", "ID_BIRTH": "id_bad_birthdate",
    "ID_REGION": "id_bad_region", "ID_EMPTY": "id_empty",
    "NAME_SPACE": "name_spaces", "NAME_DOT": "name_middle_dot", "NAME_EMPTY": "name_empty",
    "CODE_LABEL": "code_as_label", "CODE_UNKNOWN": "code_unknown",
    "DATE_LAYOUT": "date_layout", "DATE_INVALID": "date_impossible", "DATE_FUTURE": "date_future",
    "PHONE_FORMAT": "phone_format", "PHONE_LANDLINE": "phone_landline", "PHONE_INVALID": "phone_short",
    "MONEY_TEXT": "money_text", "MONEY_NEGATIVE": "money_negative",
    "DUP_EXACT": "dup_exact", "DUP_VERSION": "dup_version",
    "USCC_CHECK": "contra_uscc_bad_check",
}

#: ingest quarantine reason code (bronze/quarantine.reason_code) -> defect class
INGEST_REASON_CLASSES: dict[str, str] = {
    "CSV_TOO_FEW_FIELDS": "broken_csv_short", "CSV_TOO_MANY_FIELDS": "broken_csv_long",
    "JSON_UNPARSABLE": "broken_json", "XML_MALFORMED": "broken_xml",
}

#: cross-verify rule id (gold/conflicts.rule_id) -> defect class
REGISTER_RULES: dict[str, str] = {
    "X_DECEASED_PAID": "contra_deceased_benefit", "X_NAME_MISMATCH": "contra_name_mismatch",
    "X_BIRTH_MISMATCH": "contra_birthdate_mismatch", "X_ID_BIRTH_SEX": "contra_id_birth_sex",
    "X_ABSENT_POLICE": "contra_absent_from_police", "X_VACANT_OCCUPIED": "contra_vacant_house_residents",
    "X_USCC_INVALID": "contra_uscc_bad_check", "X_DUP_PERSON": "dup_person_two_ids",
}
#: defect class -> the register rule expected to catch it
CLASS_REGISTER_RULE: dict[str, str] = {c: r for r, c in REGISTER_RULES.items()}

#: finding action -> the truth's expected action it satisfies
FINDING_ACTIONS: dict[str, str] = {
    "correct": CORRECTED, "supersede": CORRECTED, "quarantine": QUARANTINED, "flag": FLAGGED,
}

TOLERATED_CLASS = "name_traditional"
#: classes scored record by record at (source, file, row)
RECORD_CLASSES: tuple[str, ...] = tuple(c for c in ACTIONS if c not in PERSISTENT and c not in FILE_LEVEL
                                        and c != TOLERATED_CLASS)
CLEAN_SUFFIX = "@clean"          # class key of a persistent class scored at the clean stage
UNMAPPED_PREFIX = "rule:"        # pseudo-class of a rule id that maps to no defect class
MAX_EXAMPLES = 10
MAX_UNACCOUNTED = 20


# ---------------------------------------------------------------- results ----

@dataclass
class ClassScore:
    defect_class: str
    expected: int = 0
    tp: int = 0
    fn: int = 0
    fp: int = 0
    examples_fn: list[str] = field(default_factory=list)
    examples_fp: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0


@dataclass
class NightScore:
    batch_date: str
    classes: dict[str, ClassScore]
    delivered: int
    accounted: int
    unaccounted: list[str]

    @property
    def tp(self) -> int:
        return sum(c.tp for c in self.classes.values())

    @property
    def fn(self) -> int:
        return sum(c.fn for c in self.classes.values())

    @property
    def fp(self) -> int:
        return sum(c.fp for c in self.classes.values())

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def table(self) -> str:
        w = max([len("class")] + [len(k) for k in self.classes])
        head = f"{'class':<{w}} {'expected':>8} {'tp':>6} {'fn':>6} {'fp':>6} {'recall':>7} {'precision':>9}"
        lines = [f"night {self.batch_date}", head, "-" * len(head)]
        for k in sorted(self.classes):
            c = self.classes[k]
            lines.append(f"{k:<{w}} {c.expected:>8} {c.tp:>6} {c.fn:>6} {c.fp:>6} {c.recall:>7.3f} {c.precision:>9.3f}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<{w}} {self.tp + self.fn:>8} {self.tp:>6} {self.fn:>6} {self.fp:>6} "
                     f"{self.recall:>7.3f} {self.precision:>9.3f}")
        lines.append(f"records: delivered {self.delivered}, accounted {self.accounted}, "
                     f"unaccounted {self.delivered - self.accounted}")
        lines += [f"  unaccounted: {u}" for u in self.unaccounted]
        return "\n".join(lines)


class _Scores:
    def __init__(self) -> None:
        self.classes: dict[str, ClassScore] = {}

    def get(self, key: str) -> ClassScore:
        if key not in self.classes:
            self.classes[key] = ClassScore(key)
        return self.classes[key]

    def tp(self, key: str) -> None:
        c = self.get(key)
        c.tp += 1
        c.expected += 1

    def fn(self, key: str, example: str) -> None:
        c = self.get(key)
        c.fn += 1
        c.expected += 1
        if len(c.examples_fn) < MAX_EXAMPLES:
            c.examples_fn.append(example)

    def fp(self, key: str, example: str) -> None:
        c = self.get(key)
        c.fp += 1
        if len(c.examples_fp) < MAX_EXAMPLES:
            c.examples_fp.append(example)


# ---------------------------------------------------------------- truth ----

@dataclass(frozen=True)
class TruthRow:
    source: str
    entity: str
    file: str
    row: int | None
    record_id: str
    field: str
    defect_class: str
    expected_action: str
    detail: str

    @property
    def pos(self) -> tuple[str, str, int | None]:
        return (self.source, self.file, self.row)

    @property
    def ref(self) -> str:
        return f"{self.source}/{self.entity}/{self.record_id}"

    def label(self) -> str:
        where = f"{self.file} row {self.row}" if self.file else "(not in tonight's files)"
        fld = f" {self.field}" if self.field else ""
        return f"{self.source}/{self.entity} {where} ({self.record_id}){fld}: {self.detail}"


def load_truth(path: Path) -> list[TruthRow]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [TruthRow(source=r["source"], entity=r["entity"], file=r["file"],
                         row=int(r["row"]) if r["row"] not in ("", None) else None, record_id=r["record_id"],
                         field=r["field"], defect_class=r["defect_class"], expected_action=r["expected_action"],
                         detail=r["detail"])
                for r in csv.DictReader(fh)]


# ---------------------------------------------------------------- lake access ----

class _Lake:
    def __init__(self, spark, settings, night: date) -> None:
        self.spark, self.settings, self.night = spark, settings, night
        self._tables: dict[tuple[str, str], object] = {}

    def table(self, layer: str, name: str):
        """The Delta table ``<lake>/<layer>/<name>``, or None when it does not exist (yet)."""
        if (layer, name) not in self._tables:
            path = self.settings.table_path(layer, name)
            self._tables[(layer, name)] = read_table(self.spark, path) if table_exists(self.spark, path) else None
        return self._tables[(layer, name)]

    def tonight(self, layer: str, name: str):
        from pyspark.sql import functions as F

        df = self.table(layer, name)
        return None if df is None else df.filter(F.col("_batch_date") == F.lit(self.night))


def _record_id_column(source: str, entity: str) -> str:
    try:
        from shuzhi.schemas import catalog

        return catalog().entity(source, entity).record_id
    except KeyError:
        return "record_id"


def _norm_encoding(e: str | None) -> str:
    return (e or "").upper().replace("-", "").replace("_", "")


# ---------------------------------------------------------------- scoring ----

def score_night(spark, settings, truth_root: Path, batch_date: str) -> NightScore:
    """Compare the lake's outputs for ``batch_date`` with ``<truth_root>/<batch_date>/truth.csv``."""
    from pyspark.sql import functions as F

    night = date.fromisoformat(batch_date)
    truth = load_truth(Path(truth_root) / batch_date / "truth.csv")
    lake = _Lake(spark, settings, night)
    scores = _Scores()
    for cls in ACTIONS:  # every class shows in the table, even with nothing expected tonight
        scores.get(cls)
    scores.get("contra_uscc_bad_check" + CLEAN_SUFFIX)

    # -- tonight's small per-night sets, collected ------------------------------------
    findings = lake.tonight("silver", "findings")
    finding_rows = [] if findings is None else (
        findings.select("_source", "_entity", "_file", "_row", "record_id", "field", "rule_id", "action")
        .collect())
    ingest_q = lake.tonight("bronze", "quarantine")
    ingest_q_rows = [] if ingest_q is None else (
        ingest_q.select("_source", "_entity", "_file", "_row", "reason_code").collect())
    clean_q = lake.tonight("silver", "quarantine")
    clean_q_rows = [] if clean_q is None else (
        clean_q.select("_source", "_entity", "_file", "_row", "record_id", "reason_code").collect())
    deliveries = _deliveries(lake)

    # -- record-level classes ---------------------------------------------------------
    hits: dict[tuple, set[tuple[str, str]]] = defaultdict(set)       # pos -> {(class key, action)}
    hit_labels: dict[tuple, str] = {}
    for r in finding_rows:
        cls = FINDING_RULES.get(r["rule_id"])
        key = (f"{UNMAPPED_PREFIX}{r['rule_id']}" if cls is None
               else cls + CLEAN_SUFFIX if cls in PERSISTENT else cls)
        act = FINDING_ACTIONS.get(r["action"], r["action"])
        pos = (r["_source"], r["_file"], r["_row"])
        hits[pos].add((key, act))
        hit_labels.setdefault((pos, key, act), f"{r['_source']}/{r['_entity']} {r['_file']} row {r['_row']} "
                                               f"({r['record_id']}) {r['field'] or ''} {r['rule_id']}:{r['action']}")
    for r in ingest_q_rows:
        cls = INGEST_REASON_CLASSES.get(r["reason_code"])
        key = f"{UNMAPPED_PREFIX}{r['reason_code']}" if cls is None else cls
        pos = (r["_source"], r["_file"], r["_row"])
        hits[pos].add((key, QUARANTINED))
        hit_labels.setdefault((pos, key, QUARANTINED), f"{r['_source']}/{r['_entity']} {r['_file']} row "
                                                       f"{r['_row']} ingest {r['reason_code']}")

    expected_at: dict[tuple, set[tuple[str, str]]] = defaultdict(set)
    for t in truth:
        if t.defect_class in RECORD_CLASSES:
            key = t.defect_class
        elif t.defect_class in PERSISTENT and t.defect_class in FINDING_RULES.values() and t.file and t.row:
            key = t.defect_class + CLEAN_SUFFIX
        else:
            continue
        expected_at[t.pos].add((key, t.expected_action))
        if (key, t.expected_action) in hits.get(t.pos, ()):
            scores.tp(key)
        else:
            scores.fn(key, t.label())
    for pos, found in hits.items():
        for key, act in found:
            if key.startswith(UNMAPPED_PREFIX) or (key, act) not in expected_at.get(pos, ()):
                scores.fp(key, hit_labels[(pos, key, act)])

    # -- register: open rows citing the truth's records ------------------------------
    conflicts = lake.table("gold", "conflicts")
    open_rows = None if conflicts is None else conflicts.filter(F.col("status") == "open")
    reg_truth = [t for t in truth if t.defect_class in PERSISTENT or t.defect_class == TOLERATED_CLASS]
    wanted = sorted({(CLASS_REGISTER_RULE.get(t.defect_class, "X_NAME_MISMATCH"), t.ref) for t in reg_truth})
    cited: set[tuple[str, str]] = set()
    if open_rows is not None and wanted:
        want_df = spark.createDataFrame(wanted, "rule_id string, ref string")
        exploded = open_rows.select("rule_id", F.explode("record_refs").alias("ref"))
        cited = {(r["rule_id"], r["ref"]) for r in exploded.join(want_df, ["rule_id", "ref"], "left_semi")
                 .distinct().collect()}

    # name_traditional: loaded, and not reported as a name mismatch
    quarantined_pos = {(r["_source"], r["_file"], r["_row"]) for r in clean_q_rows} | \
                      {(r["_source"], r["_file"], r["_row"]) for r in ingest_q_rows}
    for t in truth:
        if t.defect_class != TOLERATED_CLASS:
            continue
        if t.pos in quarantined_pos:
            scores.fn(t.defect_class, t.label() + " [quarantined]")
        elif ("X_NAME_MISMATCH", t.ref) in cited:
            scores.fn(t.defect_class, t.label() + " [reported as X_NAME_MISMATCH]")
        else:
            scores.tp(t.defect_class)

    # persistent: recall
    truth_refs: dict[str, set[str]] = defaultdict(set)
    for t in truth:
        if t.defect_class not in PERSISTENT:
            continue
        truth_refs[t.defect_class].add(t.ref)
        if (CLASS_REGISTER_RULE[t.defect_class], t.ref) in cited:
            scores.tp(t.defect_class)
        else:
            scores.fn(t.defect_class, t.label())

    # persistent: precision over the open rows citing a record delivered tonight
    if open_rows is not None:
        tonight_refs = _tonight_refs(lake, deliveries, clean_q)
        if tonight_refs is not None:
            touching = (open_rows.select("conflict_id", "rule_id", "record_refs",
                                         F.explode("record_refs").alias("ref"))
                        .join(tonight_refs, "ref", "left_semi").dropDuplicates(["conflict_id"]))
            for r in touching.select("conflict_id", "rule_id", "record_refs").collect():
                cls = REGISTER_RULES.get(r["rule_id"])
                refs = list(r["record_refs"] or [])
                if cls is None:
                    scores.fp(f"{UNMAPPED_PREFIX}{r['rule_id']}", f"{r['conflict_id']} refs {refs[:4]}")
                elif not truth_refs.get(cls, set()).intersection(refs):
                    scores.fp(cls, f"{r['rule_id']} {r['conflict_id']} refs {refs[:4]}")

    # -- file-level classes ------------------------------------------------------------
    flagged_files = {
        "bom": {d["file"] for d in deliveries if d["has_bom"]},
        "encoding_utf8_as_gb18030": {
            d["file"] for d in deliveries if d["actual_encoding"] is not None
            and _norm_encoding(d["actual_encoding"]) != _norm_encoding(d["declared_encoding"])},
    }
    for cls in FILE_LEVEL:
        listed = set()
        for t in truth:
            if t.defect_class != cls:
                continue
            listed.add(t.file)
            if t.file in flagged_files[cls]:
                scores.tp(cls)
            else:
                scores.fn(cls, t.label())
        for f in sorted(flagged_files[cls] - listed):
            scores.fp(cls, f)

    # -- accounting --------------------------------------------------------------------
    delivered, n_unaccounted, unaccounted = _account(lake, deliveries, findings, clean_q, ingest_q_rows)
    return NightScore(batch_date, scores.classes, delivered, delivered - n_unaccounted, unaccounted)


def _deliveries(lake: _Lake) -> list[dict]:
    """Tonight's accepted delivery files; a file accepted twice counts once (its latest record)."""
    from pyspark.sql import functions as F

    d = lake.table("ops", "deliveries")
    if d is None:
        return []
    rows = (d.filter((F.col("batch_date") == F.lit(lake.night)) & (F.col("status") == "accepted")
                     & F.col("file").isNotNull())
            .select("source", "entity", "file", "manifest_rows", "declared_encoding", "actual_encoding", "has_bom",
                    "recorded_at").collect())
    latest: dict[tuple[str, str], dict] = {}
    for r in sorted(rows, key=lambda r: (r["recorded_at"] is not None, r["recorded_at"])):
        latest[(r["source"], r["file"])] = r.asDict()
    return sorted(latest.values(), key=lambda d: (d["source"], d["file"]))


def _bronze_tonight(lake: _Lake, deliveries: list[dict]):
    """(source, entity, bronze DataFrame of tonight) for each entity delivered tonight."""
    seen = set()
    for d in deliveries:
        se = (d["source"], d["entity"])
        if se in seen:
            continue
        seen.add(se)
        df = lake.tonight("bronze", f"{se[0]}_{se[1]}")
        if df is not None:
            yield se[0], se[1], df


def _tonight_refs(lake: _Lake, deliveries: list[dict], clean_q):
    """DataFrame(ref) of the ``source/entity/record_id`` delivered tonight (bronze + clean quarantine)."""
    from pyspark.sql import functions as F

    parts = []
    for source, entity, df in _bronze_tonight(lake, deliveries):
        rid = _record_id_column(source, entity)
        parts.append(df.select(F.concat_ws("/", F.lit(source), F.lit(entity), F.col(rid).cast("string")).alias("ref")))
    if clean_q is not None:
        parts.append(clean_q.select(F.concat_ws("/", "_source", "_entity", "record_id").alias("ref")))
    return _union(parts).distinct() if parts else None


def _account(lake: _Lake, deliveries: list[dict], findings, clean_q,
             ingest_q_rows: list) -> tuple[int, int, list[str]]:
    """(delivered, unaccounted count, per-file mismatches + up to MAX_UNACCOUNTED unaccounted rows)."""
    from pyspark.sql import functions as F

    delivered = sum(int(d["manifest_rows"] or 0) for d in deliveries)
    per_file: dict[str, int] = defaultdict(int)        # bronze + ingest-quarantine rows per file
    for r in ingest_q_rows:
        per_file[r["_file"]] += 1
    parts, leftovers = [], []
    for source, entity, b in _bronze_tonight(lake, deliveries):
        rid = _record_id_column(source, entity)
        rows = b.select("_file", "_row", F.col(rid).cast("string").alias("_rid"))
        rest = rows
        if clean_q is not None:
            rest = rest.join(clean_q.filter((F.col("_source") == source) & (F.col("_entity") == entity))
                             .select("_file", "_row"), ["_file", "_row"], "left_anti")
        if findings is not None:
            rest = rest.join(findings.filter((F.col("_source") == source) & (F.col("_entity") == entity)
                                             & (F.col("action") == "supersede")).select("_file", "_row"),
                             ["_file", "_row"], "left_anti")
        silver = lake.table("silver", f"{source}_{entity}")
        if silver is not None:
            rest = rest.join(silver.select(F.col("record_id").cast("string").alias("_rid")), "_rid", "left_anti")
        leftovers.append(rest)
        parts.append(rows.select("_file", F.lit(1).alias("_n"), F.lit(0).alias("_u")))
        parts.append(rest.select("_file", F.lit(0).alias("_n"), F.lit(1).alias("_u")))
    n_rest = 0
    if parts:
        counts = _union(parts).groupBy("_file").agg(F.sum("_n").alias("n"), F.sum("_u").alias("u")).collect()
        for r in counts:
            per_file[r["_file"]] += int(r["n"])
            n_rest += int(r["u"])
    messages: list[str] = []
    n_unaccounted = n_rest
    for d in deliveries:
        manifest = int(d["manifest_rows"] or 0)
        found = per_file.get(d["file"], 0)
        if found != manifest:
            n_unaccounted += abs(manifest - found)
            messages.append(f"{d['file']}: manifest {manifest} rows, bronze + ingest quarantine hold {found}")
    if n_rest:
        messages += [f"{r['_file']} row {r['_row']} ({r['_rid']})"
                     for r in _union(leftovers).orderBy("_file", "_row").limit(MAX_UNACCOUNTED).collect()]
    return delivered, n_unaccounted, messages


def _union(dfs: list):
    out = dfs[0]
    for df in dfs[1:]:
        out = out.unionByName(df)
    return out
