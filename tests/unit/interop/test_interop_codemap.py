from __future__ import annotations

import pytest

from monitor.interop import CodeMap, CodeMapError


def test_empty_map_knows_nothing() -> None:
    cm = CodeMap.empty()
    assert cm.analyte("X") is None and cm.drug("X") is None and cm.unit("RE/ml") == "RE/ml"


def test_sources_win_over_global_and_codes_ignore_case() -> None:
    cm = CodeMap.from_toml("""
[analytes]
ALB = "serum_albumin"
[drugs]
" rtx " = "Rituximab"
[units]
"RE/ml" = "RU/mL"
[sources."LAB-A".analytes]
alb = "upcr"
crea = "2160-0"
""")
    assert cm.analyte("alb") == "serum_albumin"
    assert cm.analyte("ALB", "LAB-A") == "upcr" and cm.analyte("alb", None, "lab-a") == "upcr"
    assert cm.analyte("CREA", "LAB-A") == "serum_creatinine" and cm.analyte("CREA", "LAB-B") is None
    assert cm.drug("RTX") == "rituximab"
    assert cm.unit("re/ml") == "RU/mL"


def test_resolve_drug_by_code_name_alias_and_first_word() -> None:
    cm = CodeMap.from_toml('[drugs]\n"121191" = "rituximab"\n')
    assert cm.resolve_drug(["121191"], []) == "rituximab"
    assert cm.resolve_drug([], ["Ciclosporin"]) == "cyclosporine"
    assert cm.resolve_drug([], ["Tacrolimus 1 mg capsule"]) == "tacrolimus"
    assert cm.resolve_drug([], ["mycophenolate  mofetil"]) == "mycophenolate"
    assert cm.resolve_drug(["0"], ["paracetamol"]) is None
    assert cm.resolve_drug([], ["Aspirin 100 mg tablet"]) == "antiplatelet"  # a drug class since issue 11


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[analytes\n", "not valid TOML"),
        ('[analytes]\nX = "sodium"\n', "unknown analyte 'sodium'"),
        ('[drugs]\nX = "paracetamol"\n', "unknown drug 'paracetamol'"),
        ("[analytes]\nX = 5\n", "must be a string"),
        ('[units]\nX = " "\n', "empty unit"),
        ("[thing]\n", "unknown section"),
        ("sources = 3\n", "table of tables"),
        ("[sources.A]\nanalytes = 3\n", "sources.A.analytes must be a table"),
    ],
)
def test_bad_maps_fail_loudly_at_load(text: str, problem: str) -> None:
    with pytest.raises(CodeMapError, match=problem):
        CodeMap.from_toml(text)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(CodeMapError) as err:
        CodeMap.from_toml('[analytes]\nA = "x"\nB = "y"\n')
    assert "'x'" in str(err.value) and "'y'" in str(err.value)


def test_shipped_example_loads(examples) -> None:  # type: ignore[no-untyped-def]
    cm = CodeMap.from_toml((examples / "codemap.toml").read_text())
    assert cm.analyte("PLA2R", "REFLAB") == "anti_pla2r"
    assert cm.drug("3008") == "cyclosporine"
