"""The inhibition table (monitor/inhibitions.py): well-formed, acyclic, about registered rules."""

from __future__ import annotations

from monitor import inhibitions
from monitor.inhibitions import INHIBITIONS, Inhibition
from monitor.rules import RULE_IDS


def test_every_row_has_an_id_a_reason_and_a_basis() -> None:
    assert len({i.id for i in INHIBITIONS}) == len(INHIBITIONS)
    for i in INHIBITIONS:
        assert i.targets and i.source not in i.targets, i.id
        assert len(i.reason) > 40 and i.basis.strip(), i.id


def test_every_rule_the_table_names_is_a_registered_rule() -> None:
    assert inhibitions.rules_mentioned() - set(RULE_IDS) == set()


def test_the_table_has_no_cycle_and_the_check_finds_one() -> None:
    assert not inhibitions.has_cycle()
    loop = (Inhibition("a", "x", frozenset({"y"}), "r", "b"), Inhibition("b", "y", frozenset({"z"}), "r", "b"),
            Inhibition("c", "z", frozenset({"x"}), "r", "b"))
    assert inhibitions.has_cycle(loop) and not inhibitions.has_cycle(loop[:2])


def test_the_declared_inhibitions() -> None:
    assert inhibitions.between("relapse", "titer_rising") is inhibitions.BY_ID["relapse_over_titer"]
    assert inhibitions.between("relapse", "immunological_relapse") is inhibitions.BY_ID["relapse_over_titer"]
    assert inhibitions.between("rtx_non_response", "rtx_redose_due") is not None
    assert inhibitions.between("titer_rising", "relapse") is None  # one way only
    assert inhibitions.between("relapse", "monitoring_overdue") is None


def test_a_source_never_mutes_a_more_severe_target() -> None:
    assert inhibitions.can_inhibit("relapse", "warning", "titer_rising", "warning")
    assert inhibitions.can_inhibit("relapse", "critical", "titer_rising", "warning")
    assert not inhibitions.can_inhibit("relapse", "warning", "titer_rising", "critical")
    assert not inhibitions.can_inhibit("titer_rising", "critical", "relapse", "info")
