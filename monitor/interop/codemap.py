"""A laboratory's own codes and unit spellings, mapped to the catalogue's analytes, drugs and units.

Loaded from TOML (see examples/codemap.toml):

    [analytes]                 # global: code -> analyte key (or LOINC code)
    "PLA2R-AB" = "anti_pla2r"
    [drugs]                    # code or name -> drug key
    "RTX" = "rituximab"
    [units]                    # unit spelling -> a spelling the analyte table accepts
    "RE/ml" = "RU/mL"
    [sources."CENTRAL-LAB".analytes]   # only for results from this source (HL7 MSH-3/MSH-4, FHIR
    "K-CREA" = "serum_creatinine"      # identifier or coding system); wins over the global table

Codes are matched case-insensitively with surrounding spaces ignored; a source's table is tried
before the global one. Every target is checked at load time, so a typo fails loudly then and not as
a quarantined result months later.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from monitor.analytes import ANALYTES, RefusedCodeError, UnknownAnalyteError
from monitor.analytes import analyte as lookup_analyte
from monitor.events import DRUG_ALIASES, DRUGS

_SECTIONS = ("analytes", "drugs", "units")


class CodeMapError(ValueError):
    """A code map that cannot be used, with every problem named."""


def _key(code: str) -> str:
    return code.strip().upper()


@dataclass(frozen=True)
class _Table:
    analytes: Mapping[str, str] = field(default_factory=dict)
    drugs: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeMap:
    global_: _Table
    sources: Mapping[str, _Table]

    @classmethod
    def empty(cls) -> CodeMap:
        return cls(_Table(), MappingProxyType({}))

    @classmethod
    def from_toml(cls, text: str) -> CodeMap:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CodeMapError(f"code map is not valid TOML: {exc}") from None
        problems: list[str] = []
        unknown = set(doc) - {*_SECTIONS, "sources"}
        if unknown:
            problems.append(
                f"unknown section(s) {sorted(unknown)} (expected {', '.join(_SECTIONS)}, sources)"
            )
        global_ = _table(doc, "", problems)
        sources: dict[str, _Table] = {}
        raw_sources = doc.get("sources", {})
        if not isinstance(raw_sources, dict):
            problems.append("[sources] must be a table of tables")
            raw_sources = {}
        for name, body in raw_sources.items():
            if not isinstance(body, dict):
                problems.append(f"sources.{name} must be a table")
                continue
            sources[_key(name)] = _table(body, f"sources.{name}.", problems)
        if problems:
            raise CodeMapError("; ".join(problems))
        return cls(global_, MappingProxyType(sources))

    def _tables(self, sources: tuple[str | None, ...]) -> list[_Table]:
        found = [self.sources[_key(s)] for s in sources if s and _key(s) in self.sources]
        return [*found, self.global_]

    def analyte(self, code: str, *sources: str | None) -> str | None:
        """The analyte key for a local code, trying each given source's table, then the global one."""
        return next((t.analytes[_key(code)] for t in self._tables(sources) if _key(code) in t.analytes), None)

    def drug(self, code: str, *sources: str | None) -> str | None:
        return next((t.drugs[_key(code)] for t in self._tables(sources) if _key(code) in t.drugs), None)

    def resolve_drug(self, codes: list[str], texts: list[str], *sources: str | None) -> str | None:
        """A drug key from a feed's codes (through this map) or names (the map, then the contract's
        keys and DRUG_ALIASES, then the first word: "Rituximab 500 mg/50 mL" names rituximab)."""
        for candidate in (*codes, *texts):
            mapped = self.drug(candidate, *sources) if candidate else None
            if mapped:
                return mapped
        for candidate in texts:
            k = " ".join(candidate.strip().lower().split())
            for name in (k, k.split(" ", 1)[0] if k else ""):
                if name in DRUGS:
                    return name
                if name in DRUG_ALIASES:
                    return DRUG_ALIASES[name]
        return None

    def unit(self, spelling: str, *sources: str | None) -> str:
        """The accepted spelling for a lab's unit, or the spelling unchanged when it is not mapped."""
        return next(
            (t.units[_key(spelling)] for t in self._tables(sources) if _key(spelling) in t.units), spelling
        )


def _table(doc: Mapping[str, Any], where: str, problems: list[str]) -> _Table:
    out: dict[str, dict[str, str]] = {s: {} for s in _SECTIONS}
    for section in _SECTIONS:
        body = doc.get(section, {})
        if not isinstance(body, dict):
            problems.append(f"{where}{section} must be a table of code = target")
            continue
        for code, target in body.items():
            if not isinstance(target, str):
                problems.append(f"{where}{section}.{code}: target must be a string, not {target!r}")
                continue
            checked = _check(section, target, f"{where}{section}.{code}", problems)
            if checked is not None:
                out[section][_key(code)] = checked
    return _Table(*(MappingProxyType(out[s]) for s in _SECTIONS))


def _check(section: str, target: str, where: str, problems: list[str]) -> str | None:
    if section == "analytes":
        try:
            return lookup_analyte(target).key
        except RefusedCodeError as exc:  # e.g. a local code mapped to CD19 % (8117-4)
            problems.append(f"{where}: {exc}")
            return None
        except UnknownAnalyteError:
            problems.append(f"{where}: unknown analyte {target!r} (expected one of {', '.join(ANALYTES)})")
            return None
    if section == "drugs":
        drug = DRUG_ALIASES.get(target.strip().lower(), target.strip().lower())
        if drug not in DRUGS:
            problems.append(f"{where}: unknown drug {target!r} (expected one of {', '.join(DRUGS)})")
            return None
        return drug
    if not target.strip():
        problems.append(f"{where}: empty unit")
        return None
    return target.strip()
