"""The procedure catalog: loading it from the operator's YAML files, every problem reported with the
file, the path inside it and the reason; the bundled Thanh Hóa sample; versions; the questions the
domain catalog answers; the validate command.

Pure: files in ``tmp_path`` only, no network.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake import catalog_cli
from intake.adapters.catalog_file import CatalogError, CatalogIssue, format_path, load_catalog, read_catalog
from intake.config import DEFAULT_CATALOG, IntakeSettings
from intake.domain.catalog import (
    Catalog,
    Level,
    Procedure,
    Role,
    SupplementPolicy,
    TimeType,
    procedure_sort_key,
)
from motcua.errors import FailedPrecondition, InvalidArgument, NotFound

UNITS: dict[str, Any] = {
    "version": "2026.1",
    "units": [
        {"slug": "thanh-hoa", "unit_id": "000.00.00.H56", "name": "UBND tỉnh Thanh Hóa", "level": "province"},
        {"slug": "bim-son", "unit_id": "000.00.06.H56", "name": "UBND thị xã Bỉm Sơn", "level": "district",
         "parent": "thanh-hoa"},
        {"slug": "phuong-ba-dinh", "unit_id": "000.01.06.H56", "name": "UBND phường Ba Đình", "level": "commune",
         "parent": "bim-son"},
        {"slug": "ba-thuoc", "unit_id": "000.00.12.H56", "name": "UBND huyện Bá Thước", "level": "district",
         "parent": "thanh-hoa"},
    ],
}
SECTORS: dict[str, Any] = {"sectors": [{"code": "hoat-dong-xay-dung", "name": "Hoạt động xây dựng"},
                                       {"code": "ho-tich", "name": "Hộ tịch"}]}
STEPS = [
    {"role": "receive", "level": "district", "share": 0.1},
    {"role": "review", "level": "district", "share": 0.5, "forward": True},
    {"role": "sign", "level": "district", "share": 0.2},
    {"role": "seal", "level": "district", "share": 0.1},
    {"role": "return", "level": "district", "share": 0.1},
]
PERMIT_V1: dict[str, Any] = {
    "version": 1, "effective_from": "2021-03-03", "name": "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
    "sector": "hoat-dong-xay-dung", "level": "district", "fee": 75000, "retention": "permanent",
    "components": [
        {"code": "don-de-nghi", "name": "Đơn đề nghị", "media_types": ["application/pdf", "image/png"]},
        {"code": "ban-ve", "name": "Bản vẽ", "required": False, "media_types": ["application/pdf", "image/jpeg"],
         "originals": 2, "max_bytes": 1000},
    ],
    "duration": {"desk": 15, "online": 12}, "time_type": "working_days", "supplement_policy": "pause",
    "process": STEPS,
}
PROCEDURES: dict[str, Any] = {"procedures": [
    {"code": "1.004616", "versions": [PERMIT_V1, {"version": 2, "supplement_policy": "restart"}]},
    {"code": "1.001193", "versions": [{
        "version": 1, "name": "Đăng ký khai sinh", "sector": "ho-tich", "level": "commune", "fee": 0,
        "components": [{"code": "to-khai", "name": "Tờ khai"}], "duration": {"desk": 0.5},
        "time_type": "working_days", "supplement_policy": "restart",
        "process": [{"role": "receive", "level": "commune", "share": "20%"},
                    {"role": "sign", "level": "commune", "share": "60%"},
                    {"role": "return", "unit": "phuong-ba-dinh", "share": "20%"}],
    }]},
]}
FILES = {"units.yaml": UNITS, "sectors.yaml": SECTORS, "procedures/xay-dung.yaml": PROCEDURES}


def write(root: Path, files: dict[str, Any]) -> Path:
    """Writes ``files`` (relative name → data, or raw text) under ``root``."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        path.write_text(text, encoding="utf-8")
    return root


def issues_of(root: Path) -> list[CatalogIssue]:
    with pytest.raises(CatalogError) as excinfo:
        load_catalog(root)
    return excinfo.value.issues


def good_files() -> dict[str, Any]:
    return copy.deepcopy(FILES)


# -- a valid catalog ------------------------------------------------------------------------------


def test_a_directory_of_files_loads_as_one_catalog(tmp_path):
    catalog = load_catalog(write(tmp_path / "c", good_files()))

    assert catalog.version == "2026.1"
    assert list(catalog.units) == ["thanh-hoa", "bim-son", "phuong-ba-dinh", "ba-thuoc"]
    assert catalog.unit("bim-son").unit_id == "000.00.06.H56" and catalog.unit("bim-son").level is Level.DISTRICT
    assert set(catalog.sectors) == {"hoat-dong-xay-dung", "ho-tich"}
    permit = catalog.procedure("1.004616")
    assert (permit.version, permit.level, permit.handling_level) == (2, Level.DISTRICT, Level.DISTRICT)
    assert [c.code for c in permit.components] == ["don-de-nghi", "ban-ve"]
    assert [c.code for c in permit.required_components] == ["don-de-nghi"]
    drawing = permit.component("ban-ve")
    assert drawing is not None and not drawing.required and drawing.max_bytes == 1000 and drawing.originals == 2
    assert permit.media_types == {"application/pdf", "image/png", "image/jpeg"}
    assert (permit.duration.desk_days, permit.duration.online_days) == (15, 12)
    assert permit.working_hours(online=False) == 120 and permit.working_hours(online=True) == 96
    assert [s.role for s in permit.process] == [Role.RECEIVE, Role.REVIEW, Role.SIGN, Role.SEAL, Role.RETURN]
    assert permit.process[1].forward and not permit.process[0].forward
    birth = catalog.procedure("1.001193")
    assert birth.duration.online_days == 0.5  # online defaults to the desk duration
    assert [s.share for s in birth.process] == pytest.approx([0.2, 0.6, 0.2])  # percentages → fractions
    assert birth.process[-1].unit == "phuong-ba-dinh" and birth.process[-1].level is None


def test_one_file_is_a_catalog_too_and_json_files_are_read(tmp_path):
    merged = {**UNITS, **SECTORS, **PROCEDURES}
    assert len(load_catalog(write(tmp_path, {"one.yaml": merged}) / "one.yaml").procedures) == 2
    json_dir = write(tmp_path / "json", {"units.json": json.dumps(UNITS), "rest.yml": {**SECTORS, **PROCEDURES}})
    assert load_catalog(json_dir).procedure("1.004616").version == 2


def test_plain_shares_may_be_percentages_that_add_up_to_100(tmp_path):
    files = good_files()
    files["procedures/xay-dung.yaml"]["procedures"][0]["versions"][0]["process"] = [
        {**step, "share": share * 100} for step, share in zip(STEPS, [0.1, 0.5, 0.2, 0.1, 0.1], strict=True)]
    catalog = load_catalog(write(tmp_path, files))
    assert [s.share for s in catalog.procedure("1.004616").process] == pytest.approx([0.1, 0.5, 0.2, 0.1, 0.1])


def test_a_two_level_province(tmp_path):
    files = good_files()
    files["units.yaml"]["units"] = [
        {"slug": "tinh", "unit_id": "000.00.00.H99", "name": "UBND tỉnh", "level": "province"},
        {"slug": "xa-a", "unit_id": "000.01.00.H99", "name": "UBND xã A", "level": "commune", "parent": "tinh"},
        {"slug": "phuong-b", "unit_id": "000.02.00.H99", "name": "UBND phường B", "level": "commune",
         "parent": "tinh"},
    ]
    files["procedures/xay-dung.yaml"]["procedures"][1]["versions"][0]["process"][-1] = {
        "role": "return", "level": "commune", "share": "20%"}
    files["procedures/xay-dung.yaml"]["procedures"].pop(0)  # a district procedure has no unit to go to
    catalog = load_catalog(write(tmp_path, files))

    assert catalog.levels() == {Level.PROVINCE, Level.COMMUNE}
    assert [u.slug for u in catalog.children("tinh")] == ["xa-a", "phuong-b"]
    assert [u.slug for u in catalog.ancestors("phuong-b")] == ["tinh"]
    assert [p.code for p in catalog.list_procedures(unit="xa-a")] == ["1.001193"]

    # The same district procedure is refused there, naming the step and the procedure level.
    files = good_files()
    files["units.yaml"]["units"] = [u for u in files["units.yaml"]["units"] if u["level"] != "district"]
    files["units.yaml"]["units"][1]["parent"] = "thanh-hoa"
    found = {(i.path, i.reason) for i in issues_of(write(tmp_path / "two", files))}
    assert ("procedures[0].versions[0].level", "no unit of the catalog is at level 'district'") in found
    assert ("procedures[0].versions[0].process[0].level", "no unit of the catalog is at level 'district'") in found


# -- every problem: file, path, reason -----------------------------------------------------------

P0 = "procedures[0].versions[0]"


def _set(path: str, value: Any):
    """A change to the good files: ``file:key.0.key`` set to ``value``."""
    name, _, keys = path.partition(":")

    def change(files: dict[str, Any]) -> None:
        target = files[name]
        *parents, last = [int(k) if k.isdigit() else k for k in keys.split(".")]
        for key in parents:
            target = target[key]
        target[last] = value
    return change


def _append(path: str, value: Any):
    name, _, keys = path.partition(":")

    def change(files: dict[str, Any]) -> None:
        target = files[name]
        for key in [int(k) if k.isdigit() else k for k in keys.split(".")]:
            target = target[key]
        target.append(value)
    return change


PROC = "procedures/xay-dung.yaml:procedures.0.versions.0"
BROKEN = [
    pytest.param(_set(f"{PROC}.components.1.media_types.0", "image/gif"), "procedures/xay-dung.yaml",
                 f"{P0}.components[1].media_types[0]",
                 "'image/gif' is not an accepted media type (application/pdf, image/jpeg, image/png)", id="gif"),
    pytest.param(_set("procedures/xay-dung.yaml:procedures.0.code", "1.4616"), "procedures/xay-dung.yaml",
                 "procedures[0].code", "'1.4616' is not a national procedure code like '1.004616'",
                 id="national-code-malformed"),
    pytest.param(_set("units.yaml:units.1.unit_id", "000.0.06.H56"), "units.yaml", "units[1].unit_id",
                 "'000.0.06.H56' is not an electronic unit identifier: four dot-separated groups like "
                 "'000.00.06.H56'", id="unit-id-malformed"),
    pytest.param(_set("units.yaml:units.2.slug", "Phường Ba Đình"), "units.yaml", "units[2].slug",
                 "'Phường Ba Đình' is not a slug", id="slug-malformed"),
    pytest.param(_set("units.yaml:units.2.parent", "bim-sơn"), "units.yaml", "units[2].parent",
                 "is not a slug", id="parent-malformed"),
    pytest.param(_set("units.yaml:units.2.parent", "hai-phong"), "units.yaml", "units[2].parent",
                 "'hai-phong' is not a unit of the catalog", id="parent-missing"),
    pytest.param(_set("units.yaml:units.3.parent", None), "units.yaml", "units[3].parent",
                 "is required for a district unit: only a province is at the top of the tree", id="district-at-top"),
    pytest.param(_set("units.yaml:units.1.parent", "phuong-ba-dinh"), "units.yaml", "units[1].parent",
                 "'phuong-ba-dinh' is a commune unit: a district unit cannot be under it", id="district-under-commune"),
    pytest.param(_set("units.yaml:units.1.level", "town"), "units.yaml", "units[1].level",
                 "'town' is not a level (province, district, commune)", id="level-unknown"),
    pytest.param(_set("units.yaml:units.3.unit_id", "000.00.06.H56"), "units.yaml", "units[3].unit_id",
                 "duplicate unit identifier '000.00.06.H56' (also", id="unit-id-twice"),
    pytest.param(_set(f"{PROC}.components.1.code", "don-de-nghi"), "procedures/xay-dung.yaml",
                 f"{P0}.components[1].code", "duplicate component code 'don-de-nghi' (also components[0])",
                 id="component-code-twice"),
    pytest.param(_set(f"{PROC}.components.0.media_types", ["application/pdf", "application/pdf"]),
                 "procedures/xay-dung.yaml", f"{P0}.components[0].media_types[1]", "'application/pdf' is listed twice",
                 id="media-type-twice"),
    pytest.param(_set(f"{PROC}.components", []), "procedures/xay-dung.yaml", f"{P0}.components", "must not be empty",
                 id="no-components"),
    pytest.param(_set(f"{PROC}.components.1.originals", 0), "procedures/xay-dung.yaml", f"{P0}.components[1]",
                 "needs at least one original or one copy", id="no-original-no-copy"),
    pytest.param(_set(f"{PROC}.components.0.media_type", ["application/pdf"]), "procedures/xay-dung.yaml",
                 f"{P0}.components[0].media_type", "is not a known field", id="typo-in-a-field-name"),
    pytest.param(_set(f"{PROC}.process.2.share", 0.3), "procedures/xay-dung.yaml", f"{P0}.process",
                 "the steps' shares add up to 110%, not 100% (0.1, 0.5, 0.3, 0.1, 0.1)", id="shares-over-100"),
    pytest.param(_set(f"{PROC}.process.2.share", "twenty"), "procedures/xay-dung.yaml", f"{P0}.process[2].share",
                 "'twenty' is not a share", id="share-not-a-number"),
    pytest.param(_set(f"{PROC}.process.2.share", -0.2), "procedures/xay-dung.yaml", f"{P0}.process[2].share",
                 "must be more than 0", id="share-negative"),
    pytest.param(_set(f"{PROC}.duration.desk", 0), "procedures/xay-dung.yaml", f"{P0}.duration.desk",
                 "must be more than 0, not 0", id="duration-zero"),
    pytest.param(_set(f"{PROC}.duration.online", 2.25), "procedures/xay-dung.yaml", f"{P0}.duration.online",
                 "2.25 working days: only whole or half days", id="quarter-days"),
    pytest.param(_set(f"{PROC}.time_type", "calendar_days"), "procedures/xay-dung.yaml", f"{P0}.time_type",
                 None, id="calendar-days-valid-with-whole-days"),
    pytest.param(_set(f"{PROC}.process.1.unit", "nowhere"), "procedures/xay-dung.yaml", f"{P0}.process[1]",
                 "give the step's level or its unit, not both", id="step-level-and-unit"),
    pytest.param(_set(f"{PROC}.process.1", {"role": "review", "unit": "nowhere", "share": 0.5}),
                 "procedures/xay-dung.yaml", f"{P0}.process[1].unit", "'nowhere' is not a unit of the catalog",
                 id="step-unit-missing"),
    pytest.param(_set(f"{PROC}.process.1", {"role": "review", "share": 0.5}), "procedures/xay-dung.yaml",
                 f"{P0}.process[1]", "give the step's level (province, district, commune) or its unit",
                 id="step-without-unit"),
    pytest.param(_set(f"{PROC}.process.0.role", "review"), "procedures/xay-dung.yaml", f"{P0}.process[0].role",
                 "the first step must be 'receive'", id="first-step-not-receive"),
    pytest.param(_set(f"{PROC}.process.4.role", "approve"), "procedures/xay-dung.yaml", f"{P0}.process[4].role",
                 "the last step must be 'return'", id="last-step-not-return"),
    pytest.param(_set(f"{PROC}.process.2.role", "approve"), "procedures/xay-dung.yaml", f"{P0}.process[3].role",
                 "'seal' must come after a 'sign' step", id="seal-without-signature"),
    pytest.param(_set(f"{PROC}.process.2.role", "stamp"), "procedures/xay-dung.yaml", f"{P0}.process[2].role",
                 "'stamp' is not a step role (receive, assign, review, approve, sign, seal, return)",
                 id="role-unknown"),
    pytest.param(_set(f"{PROC}.sector", "xay-dung"), "procedures/xay-dung.yaml", f"{P0}.sector",
                 "'xay-dung' is not a sector of the catalog (ho-tich, hoat-dong-xay-dung)", id="sector-missing"),
    pytest.param(_set(f"{PROC}.supplement_policy", "wait"), "procedures/xay-dung.yaml", f"{P0}.supplement_policy",
                 "'wait' is not a supplement policy (pause, restart)", id="policy-unknown"),
    pytest.param(_set(f"{PROC}.units", ["phuong-ba-dinh"]), "procedures/xay-dung.yaml", f"{P0}.units[0]",
                 "'phuong-ba-dinh' is a commune unit; this procedure is received at district level",
                 id="receiving-unit-of-another-level"),
    pytest.param(_set(f"{PROC}.fee", "75.000 đồng"), "procedures/xay-dung.yaml", f"{P0}.fee",
                 "must be a whole number, not '75.000 đồng'", id="fee-as-text"),
    pytest.param(_set(f"{PROC}.effective_from", "01/07/2025"), "procedures/xay-dung.yaml", f"{P0}.effective_from",
                 "must be a date such as 2025-07-01", id="date-malformed"),
    pytest.param(_set(f"{PROC}.retention", "forever"), "procedures/xay-dung.yaml", f"{P0}.retention",
                 "'forever' is not a retention class: write permanent or a number of years such as 10",
                 id="retention-unknown"),
    pytest.param(_set("procedures/xay-dung.yaml:procedures.0.versions.1.version", 1), "procedures/xay-dung.yaml",
                 "procedures[0].versions[1].version", "must be greater than the version before it (1)",
                 id="versions-out-of-order"),
    pytest.param(_set("procedures/xay-dung.yaml:procedures.0.name", "Cấp phép"), "procedures/xay-dung.yaml",
                 "procedures[0].name", "is not a field of a procedure", id="field-outside-versions"),
    pytest.param(_append("procedures/xay-dung.yaml:procedures", {"code": "1.004616", "versions": [PERMIT_V1]}),
                 "procedures/xay-dung.yaml", "procedures[2].code",
                 "procedure '1.004616' is defined twice (also", id="procedure-twice"),
    pytest.param(_set("units.yaml:version", 2026.1), "units.yaml", "version",
                 "must be text such as \"2026.1\", not 2026.1: put it in quotes", id="version-unquoted"),
    pytest.param(_set("sectors.yaml:version", "2026.2"), "units.yaml", "version",  # files are read in name order
                 "the catalog version is already set in", id="version-twice"),
    pytest.param(_set("units.yaml:unit", []), "units.yaml", "unit",
                 "is not a known section (version, units, sectors, procedures)", id="section-unknown"),
]


@pytest.mark.parametrize("change, file, path, reason", BROKEN)
def test_each_problem_names_the_file_the_path_and_the_reason(tmp_path, change, file, path, reason):
    files = good_files()
    change(files)
    root = write(tmp_path / "catalog", files)
    if reason is None:  # a control: the change alone is fine
        load_catalog(root)
        return

    issues = issues_of(root)

    matching = [i for i in issues if i.file == str(root / file) and i.path == path and reason in i.reason]
    assert matching, "\n".join(str(i) for i in issues)
    assert f"{root / file}: {path}: " in str(matching[0])


@pytest.mark.parametrize("text, path, reason", [
    pytest.param('procedures:\n  - code: 1.004616\n    versions: []\n', "procedures[0].code",
                 "must be text, but YAML read 1.004616 as a number: put it in quotes", id="code-unquoted"),
    pytest.param("procedures:\n  - code: '1.004616'\n    code: '1.004617'\n", "line 3, column 5",
                 "is not valid YAML: found the key 'code' twice", id="duplicate-key"),
    pytest.param("units: [\n  {slug: a\n", "line 3, column 1", "is not valid YAML", id="yaml-syntax"),
    pytest.param("- just\n- a list\n", "", "must be a mapping with the sections version, units, sectors, procedures",
                 id="top-level-list"),
    pytest.param("", "", "is empty", id="empty-file"),
    pytest.param("units: {slug: a}\n", "units", "must be a list, not a mapping", id="section-not-a-list"),
])
def test_files_that_are_not_catalogs(tmp_path, text, path, reason):
    root = write(tmp_path / "catalog", {**good_files(), "procedures/more.yaml": text})
    issues = issues_of(root)
    where = str(root / "procedures/more.yaml")
    assert any(i.file == where and i.path == path and reason in i.reason for i in issues), \
        "\n".join(str(i) for i in issues)


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    files = good_files()
    units = files["units.yaml"]["units"]
    units[2]["parent"] = "hai-phong"
    units[3]["unit_id"] = "12.H56"
    version = files["procedures/xay-dung.yaml"]["procedures"][0]["versions"][0]
    version["components"][1]["media_types"] = ["image/gif"]
    version["components"].append({"code": "ban-ve", "name": "again"})
    version["process"][1]["unit"] = "nowhere"
    version["duration"]["desk"] = 1.2
    root = write(tmp_path, files)

    issues = issues_of(root)

    assert [(Path(i.file).name, i.path) for i in issues] == [  # files in name order
        ("xay-dung.yaml", f"{P0}.components[1].media_types[0]"),
        # Rules are still checked on the parts whose shape is right.
        ("xay-dung.yaml", f"{P0}.components[2].code"),
        ("xay-dung.yaml", f"{P0}.duration.desk"),
        ("xay-dung.yaml", f"{P0}.process[1]"),
        ("units.yaml", "units[2].parent"),
        ("units.yaml", "units[3].unit_id"),
    ]
    message = str(CatalogError(root, issues))
    assert message.startswith(f"6 problems in the catalog {root}:\n")
    assert message.count("\n") == 6
    assert f"{root / 'units.yaml'}: units[2].parent: 'hai-phong' is not a unit of the catalog" in message


def test_references_across_files_and_to_entries_with_errors(tmp_path):
    files = good_files()
    files["units.yaml"]["units"][1]["name"] = ""  # bim-son is broken, but it exists
    files["more/units.yaml"] = {"units": [
        {"slug": "xa-moi", "unit_id": "000.02.06.H56", "name": "UBND xã Mới", "level": "commune", "parent": "bim-son"},
        {"slug": "bim-son", "unit_id": "000.00.07.H56", "name": "again", "level": "district", "parent": "thanh-hoa"},
    ]}
    root = write(tmp_path, files)

    issues = issues_of(root)

    assert [(Path(i.file).relative_to(root).as_posix(), i.path, i.reason) for i in issues] == [
        ("more/units.yaml", "units[1].slug", f"duplicate unit slug 'bim-son' (also {root / 'units.yaml'}: units[1])"),
        ("units.yaml", "units[1].name", "must not be empty"),
    ]  # nothing about xa-moi's parent or the steps: the unit they name exists, it has errors of its own


def test_missing_catalogs(tmp_path):
    assert [str(i) for i in issues_of(tmp_path / "nowhere")] == [f"{tmp_path / 'nowhere'}: does not exist"]
    (tmp_path / "empty").mkdir()
    assert "holds no catalog file" in str(issues_of(tmp_path / "empty")[0])
    write(tmp_path / "bare", {"units.yaml": {"units": UNITS["units"]}, "p.yaml": {**SECTORS, **PROCEDURES}})
    assert [(i.path, i.reason.split(":")[0]) for i in issues_of(tmp_path / "bare")] == [("version", "is required")]
    write(tmp_path / "hidden", {**good_files(), ".backup/units.yaml": "not: [valid"})
    assert load_catalog(tmp_path / "hidden").version == "2026.1"  # hidden files are not read


# -- versions -------------------------------------------------------------------------------------


def test_a_procedure_has_versions_and_the_highest_is_current(tmp_path):
    files = good_files()
    versions = files["procedures/xay-dung.yaml"]["procedures"][0]["versions"]
    versions[1]["effective_from"] = "2025-01-01"
    versions.append({"version": 5, "duration": {"desk": 10}, "components": [{"code": "don-de-nghi", "name": "Đơn"}]})
    catalog = load_catalog(write(tmp_path, files))

    first, second, fifth = catalog.versions("1.004616")
    assert [p.version for p in (first, second, fifth)] == [1, 2, 5]
    assert catalog.procedure("1.004616") == fifth == catalog.procedure_version("1.004616", 5)
    assert catalog.procedure_version("1.004616", 1) == first
    # A version takes every field it does not state from the version before it...
    assert (second.name, second.components, second.process, second.fee) == (first.name, first.components,
                                                                            first.process, first.fee)
    assert (first.supplement_policy, second.supplement_policy, fifth.supplement_policy) == (
        SupplementPolicy.PAUSE, SupplementPolicy.RESTART, SupplementPolicy.RESTART)
    assert [c.code for c in fifth.components] == ["don-de-nghi"]
    assert (first.retention, second.retention, fifth.retention) == ("permanent",) * 3  # the archive keeps it so
    assert (fifth.duration.desk_days, fifth.duration.online_days) == (10, 10)
    # ...except its number and the date it applies from.
    assert (first.effective_from.isoformat(), second.effective_from.isoformat(), fifth.effective_from) == (
        "2021-03-03", "2025-01-01", None)
    with pytest.raises(NotFound, match=r"procedure '1.004616' has no version 3 \(versions: 1, 2, 5\)"):
        catalog.procedure_version("1.004616", 3)
    with pytest.raises(NotFound, match="'9.999999' is not in the catalog"):
        catalog.procedure_version("9.999999", 1)


def test_a_problem_in_an_inherited_field_is_reported_once_and_a_new_one_where_it_arises(tmp_path):
    files = good_files()
    versions = files["procedures/xay-dung.yaml"]["procedures"][0]["versions"]
    versions[0]["components"][0]["media_types"] = ["image/gif"]  # inherited by version 2 as it is
    versions[0]["duration"] = {"desk": 7.5}  # fine in working days...
    versions[1]["time_type"] = "calendar_days"  # ...not in version 2's calendar days
    versions[1]["effective_from"] = "2020-01-01"  # before version 1's

    issues = issues_of(write(tmp_path, files))

    assert [(i.path, i.reason) for i in issues] == [
        (f"{P0}.components[0].media_types[0]",
         "'image/gif' is not an accepted media type (application/pdf, image/jpeg, image/png)"),
        ("procedures[0].versions[1].duration.desk",
         "7.5 calendar days: only whole days (a field taken from the version before)"),
        ("procedures[0].versions[1].effective_from", "must be after the version before it (2021-03-03)"),
    ]


# -- the bundled sample ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


def test_the_bundled_thanh_hoa_sample_loads(sample: Catalog):
    assert DEFAULT_CATALOG.is_dir() and IntakeSettings().catalog_file == DEFAULT_CATALOG
    levels = [u.level for u in sample.units.values()]
    assert levels.count(Level.DISTRICT) >= 3 and levels.count(Level.COMMUNE) >= 6
    assert len(sample.procedures) >= 12
    # Slugs and identifiers that tests, events and queues depend on.
    assert {s: sample.unit(s).unit_id for s in ("thanh-hoa", "bim-son", "ba-thuoc", "tho-xuan")} == {
        "thanh-hoa": "000.00.00.H56", "bim-son": "000.00.06.H56", "ba-thuoc": "000.00.12.H56",
        "tho-xuan": "000.00.20.H56"}
    for district in ("bim-son", "ba-thuoc", "tho-xuan"):
        assert len(sample.children(district)) >= 2
        assert all(u.unit_id.endswith(sample.unit(district).unit_id[-6:]) for u in sample.children(district))
    for code, versions in sample.procedures.items():
        assert re.fullmatch(r"\d+\.\d{6}", code)
        for procedure in versions:
            assert procedure.code == code and procedure.sector in sample.sectors
            assert procedure.required_components and procedure.duration.desk_days > 0
            assert sum(s.share for s in procedure.process) == pytest.approx(1)
    assert {p.time_type for p in sample.list_procedures()} == set(TimeType)
    assert {p.supplement_policy for p in sample.list_procedures()} == set(SupplementPolicy)


def test_the_sample_procedures_the_end_to_end_tests_use(sample: Catalog):
    permit = sample.procedure("1.004616")
    assert permit.level is Level.DISTRICT
    assert permit.media_types == {"application/pdf", "image/jpeg", "image/png"}
    request, drawing = permit.component("don-de-nghi"), permit.component("ban-ve")
    assert request is not None and request.required
    assert request.media_types == {"application/pdf", "image/jpeg", "image/png"}
    assert drawing is not None and not drawing.required and "application/pdf" in drawing.media_types
    assert [c.code for c in permit.required_components] == ["don-de-nghi"]
    household = sample.procedure("1.001612")
    assert household.media_types == {"application/pdf"} and household.component("don-de-nghi") is not None
    assert len(sample.versions("1.004616")) >= 2


def test_what_the_domain_catalog_answers(sample: Catalog):
    assert [u.slug for u in sample.ancestors("xa-xuan-hoa")] == ["tho-xuan", "thanh-hoa"]
    assert sample.unit_by_id("000.00.12.H56").slug == "ba-thuoc"
    assert [u.slug for u in sample.list_units(level="district")] == ["bim-son", "ba-thuoc", "tho-xuan"]
    assert [u.slug for u in sample.list_units(parent="bim-son", level="commune")] == [
        "phuong-ba-dinh", "phuong-ngoc-trao", "phuong-lam-son"]
    codes = [p.code for p in sample.list_procedures()]
    assert codes == sorted(codes, key=procedure_sort_key) and len(codes) == len(sample.procedures)
    assert all(p.level is Level.COMMUNE for p in sample.list_procedures(unit="xa-luong-ngoai"))
    assert [p.code for p in sample.list_procedures(level="district", sector="ho-kinh-doanh")] == [
        "1.001612", "2.000720"]
    assert [p.code for p in sample.list_procedures(unit="van-phong-dang-ky-dat-dai")] == ["1.004227"]
    assert sample.list_procedures(unit="thanh-hoa") == []  # the land office's own desk receives it
    with pytest.raises(InvalidArgument):
        sample.unit("")
    with pytest.raises(NotFound):
        sample.unit("hai-phong")
    with pytest.raises(NotFound):
        sample.unit_by_id("000.00.99.H56")
    with pytest.raises(InvalidArgument):
        sample.procedure("")


def test_receiving_units_may_be_listed(tmp_path):
    files = good_files()
    files["procedures/xay-dung.yaml"]["procedures"][0]["versions"][0]["units"] = ["ba-thuoc"]
    catalog = load_catalog(write(tmp_path, files))
    assert [p.code for p in catalog.list_procedures(unit="ba-thuoc")] == ["1.004616"]
    assert catalog.list_procedures(unit="bim-son") == []
    assert catalog.receives(catalog.unit("ba-thuoc"), catalog.procedure("1.004616"))


@pytest.mark.parametrize("code, unit, received", [
    ("1.004616", "bim-son", True),  # district level at a district
    ("1.004616", "ba-thuoc", True),
    ("1.004616", "thanh-hoa", False),  # at the province's own unit
    ("1.004616", "van-phong-dang-ky-dat-dai", False),  # at a province-level agency
    ("1.004616", "phuong-ba-dinh", False),  # at a commune
    ("2.000815", "xa-luong-ngoai", True),  # commune level at a commune
    ("2.000815", "bim-son", False),
    ("2.000815", "thanh-hoa", False),
])
def test_a_procedure_is_received_only_at_units_of_its_level(code, unit, received):
    sample = load_catalog(DEFAULT_CATALOG)
    procedure, at = sample.procedure(code), sample.unit(unit)
    assert sample.receives(at, procedure) is received
    if received:
        sample.require_receives(at, procedure)
        return
    with pytest.raises(FailedPrecondition) as info:
        sample.require_receives(at, procedure)
    message = str(info.value)
    assert message.startswith(f"receiving_unit: procedure {code} ({procedure.name}) is not received at {unit} "
                              f"({at.level} level)"), message
    assert message.endswith(f"received at units of level {procedure.level}"), message


@pytest.mark.parametrize("unit, received", [("ba-thuoc", True), ("bim-son", False), ("thanh-hoa", False)])
def test_a_procedure_with_named_units_is_received_only_there(tmp_path, unit, received):
    files = good_files()
    files["procedures/xay-dung.yaml"]["procedures"][0]["versions"][0]["units"] = ["ba-thuoc"]
    catalog = load_catalog(write(tmp_path, files))
    procedure, at = catalog.procedure("1.004616"), catalog.unit(unit)
    if received:
        catalog.require_receives(at, procedure)
        return
    with pytest.raises(FailedPrecondition, match=rf"is not received at {unit} .*only at the units ba-thuoc "
                                                 r"\(level district\)$"):
        catalog.require_receives(at, procedure)


def test_domain_types_take_plain_strings():
    procedure = Procedure("1.000001", "x", "y", level="commune", time_type="calendar_days",
                          supplement_policy="restart")
    assert (procedure.level, procedure.handling_level) == (Level.COMMUNE, Level.COMMUNE)
    assert procedure.time_type is TimeType.CALENDAR_DAYS and procedure.working_hours(online=False) is None
    with pytest.raises(ValueError):
        Procedure("1.000001", "x", "y", level="town")


def test_format_path():
    assert format_path(("procedures", 2, "components", 1, "media_types", 0)) == \
        "procedures[2].components[1].media_types[0]"
    assert format_path(()) == ""


# -- the validate command -------------------------------------------------------------------------


def test_validate_prints_ok_with_counts(capsys):
    assert catalog_cli.main(["validate", str(DEFAULT_CATALOG)]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(rf"OK {re.escape(str(DEFAULT_CATALOG))}: catalog version \S+, \d+ files: \d+ units "
                        r"\(\d+ province, \d+ district, \d+ commune\), \d+ sectors, \d+ procedures \(\d+ versions\)\n",
                        out), out


def test_validate_prints_every_problem_and_fails(tmp_path, capsys):
    files = good_files()
    files["units.yaml"]["units"][2]["parent"] = "hai-phong"
    files["procedures/xay-dung.yaml"]["procedures"][0]["versions"][0]["fee"] = -1
    root = write(tmp_path, files)

    assert catalog_cli.main(["validate", str(root)]) == 1

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{root / 'procedures/xay-dung.yaml'}: {P0}.fee: must be at least 0, not -1",
        f"{root / 'units.yaml'}: units[2].parent: 'hai-phong' is not a unit of the catalog",
    ]
    assert captured.err == f"FAILED: 2 problems in {root}\n"


def test_validate_reads_the_setting_without_a_path(tmp_path, capsys, monkeypatch):
    root = write(tmp_path, good_files())
    monkeypatch.setenv("MOTCUA_CATALOG_PATH", str(root))
    assert catalog_cli.main(["validate"]) == 0
    assert capsys.readouterr().out.startswith(f"OK {root}: catalog version 2026.1, 3 files: 4 units ")
    assert read_catalog(root).files == [root / "procedures/xay-dung.yaml", root / "sectors.yaml",
                                        root / "units.yaml"]
