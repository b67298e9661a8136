"""Traceability: every numbered clause of both documents is mapped to duties or to a reason.

The expected numbering is counted by hand from catalog/sources/: the Dehui list has seven parts
with 16, 9, 9, 8, 17, 19 and 15 items; part 六's nineteen sections have 7, 6, 6, 4, 12, 9, 5, 14, 3,
2, 9, 3, 2, 2, 6, 5, 5, 6 and 3 points (六（五）10 lost its full stop in the transcription:
"10 负责…"). The Erdao work points are numbered 1 to 17.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pingan.cli import app
from pingan.core.settings import REPO_ROOT
from pingan.duties.catalog import load_catalog
from pingan.duties.coverage import clauses, load_mapping, numeral, problems, render

CATALOG = REPO_ROOT / "catalog"
DEHUI, ERDAO = "000_835012ae156b196b.txt", "002_8ab6cc7abff1c59e.txt"
ITEMS = {"一": 16, "二": 9, "三": 9, "四": 8, "五": 17, "六": 19, "七": 15}
POINTS_OF_SIX = [7, 6, 6, 4, 12, 9, 5, 14, 3, 2, 9, 3, 2, 2, 6, 5, 5, 6, 3]


def expected_dehui() -> list[str]:
    keys = []
    for part, n in ITEMS.items():
        for i in range(1, n + 1):
            item = f"{part}（{numeral(i)}）"
            keys.append(item)
            if part == "六":
                keys += [f"{item}{p}" for p in range(1, POINTS_OF_SIX[i - 1] + 1)]
    return keys


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {doc: (CATALOG / "sources" / doc).read_text(encoding="utf-8") for doc in (DEHUI, ERDAO)}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG)


def test_it_finds_every_numbered_clause_of_both_documents(sources):
    assert [c.key for c in clauses(sources[DEHUI])] == expected_dehui()
    assert len(expected_dehui()) == 202
    assert [c.key for c in clauses(sources[ERDAO])] == [str(n) for n in range(1, 18)]
    found = {c.key: c.text for c in clauses(sources[DEHUI])}
    assert found["六（五）10"].startswith("10负责全市中小学地方课程教材")
    assert found["五（五）"] == "（五）负责所属学校大型活动的安全稳定审查和备案。"


def test_the_mapping_covers_every_clause_and_every_duty(catalog, sources):
    mapping = load_mapping(CATALOG / "coverage.yaml")
    assert problems(catalog, sources, mapping) == []
    # spot checks against the documents: 五（五） and 二道 11 are encoded (issue 14 finding 3)
    assert "safety-section-large-activity-review" in mapping[DEHUI]["五（五）"]
    assert "erdao-stampede-prevention" in mapping[ERDAO]["11"]
    assert mapping[DEHUI]["三（八）"] == ["safety-lead-target-assessment"]


def test_a_clause_missing_from_the_mapping_fails(catalog, sources, tmp_path):
    mapping = load_mapping(CATALOG / "coverage.yaml")
    del mapping[DEHUI]["六（五）10"]
    mapping[ERDAO]["18"] = "not time-bound: there is no point 18"
    mapping[ERDAO]["11"] = "not time-bound: pretend"
    found = problems(catalog, sources, mapping)
    assert f"{DEHUI} 六（五）10: not in the mapping" in found
    assert f"{ERDAO} 18: no such clause in the document" in found
    assert f"{ERDAO} 11: duty 'erdao-stampede-prevention' cites it but is not listed" in found


def test_a_bare_reason_is_refused(tmp_path: Path):
    path = tmp_path / "coverage.yaml"
    path.write_text(f"documents:\n  {ERDAO}:\n    '3': 'no idea'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not time-bound: why"):
        load_mapping(path)


def test_docs_coverage_is_generated_from_the_mapping(catalog, sources):
    text = render(catalog, sources, load_mapping(CATALOG / "coverage.yaml"))
    assert (REPO_ROOT / "docs" / "COVERAGE.md").read_text(encoding="utf-8") == text, "run: pingan catalog coverage --write"
    assert "| 五（五） |" in text and "`safety-section-large-activity-review` semester ※cadence" in text
    out = CliRunner().invoke(app, ["catalog", "coverage", "--check"])
    assert out.exit_code == 0, out.output
