"""Validated events: patients, lab results and medication events (the NDJSON contract of docs/input-contract.md).

Every parser (NDJSON, CSV, FHIR, HL7 v2) ends here, so validation and unit conversion happen once.
Lab values are converted to the analyte's canonical unit on validation; the reported value and unit
are kept beside them for the evidence trail.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Callable, Generic, Literal, Self, TypeVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.analytes import ANALYTES, FieldError, analyte as lookup_analyte
from monitor.validation import (
    ValidationContext,
    check_day,
    check_time,
    context_of,
    in_zone,
    planned_end_limit,
    strict_date,
    strict_datetime,
    strict_number,
)

ResultStatus = Literal["final", "preliminary", "corrected", "entered-in-error"]
# how one identity's versions are ordered: a retraction beats a correction beats a final result
STATUS_RANK: dict[str, int] = {"preliminary": 0, "final": 1, "corrected": 2, "entered-in-error": 3}
# statuses whose values the rules may read (docs/clinical-rules.md: final/corrected only)
USABLE_STATUSES = frozenset({"final", "corrected"})
_STATUS_ALIASES = {"amended": "corrected", "cancelled": "entered-in-error", "registered": "preliminary"}

Drug = Literal[
    "rituximab", "obinutuzumab", "ofatumumab", "ocrelizumab", "belimumab", "cyclosporine",
    "tacrolimus", "cyclophosphamide", "chlorambucil", "glucocorticoid", "mycophenolate", "acth",
    "ace_inhibitor", "arb", "anticoagulant", "antiplatelet",
]
DRUGS: tuple[str, ...] = Drug.__args__  # type: ignore[attr-defined]
# common names that mean one of the contract's drugs (a lab or pharmacy feed rarely uses our keys)
DRUG_ALIASES: dict[str, str] = {
    "ciclosporin": "cyclosporine", "cyclosporin": "cyclosporine", "cyclosporin a": "cyclosporine",
    "ciclosporine": "cyclosporine", "csa": "cyclosporine", "tac": "tacrolimus", "fk506": "tacrolimus",
    "ctx": "cyclophosphamide", "cyc": "cyclophosphamide", "rtx": "rituximab",
    "prednisone": "glucocorticoid", "prednisolone": "glucocorticoid",
    "methylprednisolone": "glucocorticoid", "steroid": "glucocorticoid", "steroids": "glucocorticoid",
    "mycophenolate mofetil": "mycophenolate", "mmf": "mycophenolate",
    "acei": "ace_inhibitor", "ace inhibitor": "ace_inhibitor", "warfarin": "anticoagulant",
    "heparin": "anticoagulant", "apixaban": "anticoagulant", "rivaroxaban": "anticoagulant",
    # antiplatelet agents (seed review: below 20 g/L albumin, antiplatelet *or* anticoagulant therapy;
    # KDIGO21: aspirin where the bleeding risk of anticoagulation is high). ASA is the usual
    # abbreviation of acetylsalicylic acid; Plavix is clopidogrel's brand, Brilinta (US) and
    # Brilique (EU) ticagrelor's.
    "aspirin": "antiplatelet", "acetylsalicylic acid": "antiplatelet", "acetylsalicylate": "antiplatelet",
    "asa": "antiplatelet", "clopidogrel": "antiplatelet", "plavix": "antiplatelet",
    "ticagrelor": "antiplatelet", "brilinta": "antiplatelet", "brilique": "antiplatelet",
}
ANTI_CD20 = frozenset({"rituximab", "obinutuzumab", "ofatumumab", "ocrelizumab"})
CALCINEURIN_INHIBITORS = frozenset({"cyclosporine", "tacrolimus"})
# thrombosis prophylaxis: either class active suppresses albumin_low_thrombosis
THROMBOPROPHYLAXIS = frozenset({"anticoagulant", "antiplatelet"})

Frequency = Literal["once", "qd", "bid", "tid", "qw", "q2w", "q4w"]
# administrations per day for each frequency (used for cumulative doses)
ADMINISTRATIONS_PER_DAY: dict[str, float] = {
    "qd": 1.0, "bid": 2.0, "tid": 3.0, "qw": 1 / 7, "q2w": 1 / 14, "q4w": 1 / 28,
}
# dose units and their factor to mg ("per kg"/"per m2" need body size, handled by therapy)
DOSE_UNITS_TO_MG: dict[str, float] = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
RELATIVE_DOSE_UNITS = frozenset({"mg/kg", "mg/m2"})
OTHER_DOSE_UNITS = frozenset({"iu", "units"})  # ACTH gel, heparin: amounts not convertible to mg
Comparator = Literal["<", "<=", ">", ">="]

PatientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
SourceText = Annotated[str, Field(min_length=1, max_length=200)]
# strict input types (monitor.validation): a boolean is no number, a number is no date
Number = Annotated[float, BeforeValidator(strict_number)]
Day = Annotated[date, BeforeValidator(strict_date)]
When = Annotated[datetime, BeforeValidator(strict_datetime)]


_T = TypeVar("_T")
_E = TypeVar("_E", bound="_EventBase")


class memoised(Generic[_T]):
    """A property computed once per (immutable) event and kept in the instance __dict__.

    functools.cached_property does the same but takes a lock on every first access in Python 3.11,
    which costs more than computing a date; events are frozen, so two threads racing here compute
    the same value and either may win. A non-data descriptor: once stored, the instance __dict__
    answers and this is not called again.
    """

    def __init__(self, fn: Callable[[Any], _T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


# per-instance memos of derived properties, dropped by _EventBase.model_copy
_MEMOISED = ("identity", "effective_date")


class _EventBase(BaseModel):
    # forbid unknown keys: a misspelt "status" must not silently turn a retraction into a result
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, ignored_types=(memoised,))

    patient_id: PatientId
    source: SourceText | None = None
    source_id: SourceText | None = None

    def _identity_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    # Memoised per instance: an event is immutable (frozen), and assess() reads identities and
    # dates hundreds of times per timeline. `memoised` stores the value in the instance
    # __dict__ beside the fields; pydantic's __eq__, __hash__, model_dump and repr look at fields
    # only, so a memoised value changes none of them. The one way to change a field of a frozen
    # event is model_copy(update=...), which would carry the memo over: see model_copy below.
    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        for name in _MEMOISED:
            copied.__dict__.pop(name, None)  # recomputed from the copy's own fields on first use
        return copied

    @memoised
    def identity(self) -> str:
        """Stable identity of the clinical fact: source + source id, or a hash of what defines it."""
        type_ = getattr(self, "type")
        if self.source_id:
            return f"{type_}:{self.source or '-'}:{self.source_id}"
        return f"{type_}:h:{_digest(self._identity_payload())[:32]}"

    @property
    def content_hash(self) -> str:
        """Hash of the whole event: the same identity with another hash is a new version."""
        return _digest(self.model_dump(mode="json", exclude={"recorded_at"}))


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Patient(_EventBase):
    type: Literal["patient"] = "patient"
    birth_date: Day | None = None
    sex: Literal["male", "female", "other", "unknown"] | None = None
    weight_kg: Annotated[Number, Field(gt=0, le=400)] | None = None
    height_cm: Annotated[Number, Field(gt=30, le=260)] | None = None
    status: Literal["final"] = "final"

    @model_validator(mode="after")
    def _born_in_the_past(self, info: ValidationInfo) -> "Patient":
        ctx = context_of(info)
        check_day("birth_date", self.birth_date, ctx, latest=ctx.received_day if ctx else None,
                  why="a birth date cannot lie in the future")
        return self

    def _identity_payload(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id}

    @memoised
    def identity(self) -> str:
        # one demographic record per patient: a later one replaces it as a new version
        return f"patient:{self.patient_id}"


class LabResult(_EventBase):
    type: Literal["lab"] = "lab"
    analyte: str
    value: Number
    unit: str
    effective_at: When
    comparator: Comparator | None = None
    status: ResultStatus = "final"
    recorded_at: When | None = None
    reported_value: Number | None = None
    reported_unit: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_alias(cls, v: Any) -> Any:
        return _STATUS_ALIASES.get(v, v) if isinstance(v, str) else v

    @field_validator("analyte", mode="before")
    @classmethod
    def _analyte_key(cls, v: Any) -> Any:
        return lookup_analyte(v).key if isinstance(v, str) else v

    @field_validator("effective_at", "recorded_at")
    @classmethod
    def _aware(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        return in_zone(v, info) if v is not None else None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @model_validator(mode="after")
    def _to_canonical_unit(self) -> "LabResult":
        spec = ANALYTES[self.analyte]
        canonical = spec.to_canonical(self.value, self.unit)
        if self.unit != spec.canonical_unit:
            object.__setattr__(self, "reported_value", self.value if self.reported_value is None else self.reported_value)
            object.__setattr__(self, "reported_unit", self.unit if self.reported_unit is None else self.reported_unit)
            object.__setattr__(self, "value", round(canonical, 6))
            object.__setattr__(self, "unit", spec.canonical_unit)
        spec.check_plausible(self.value)
        return self

    @model_validator(mode="after")
    def _plausible_times(self, info: ValidationInfo) -> "LabResult":
        ctx = context_of(info)
        check_time("effective_at", self.effective_at, ctx)
        check_time("recorded_at", self.recorded_at, ctx)
        return self

    @memoised
    def effective_date(self) -> date:
        return self.effective_at.date()

    def _identity_payload(self) -> dict[str, Any]:
        return {"p": self.patient_id, "a": self.analyte, "t": self.effective_at.isoformat(),
                "v": self.value, "c": self.comparator}


class MedicationEvent(_EventBase):
    type: Literal["medication"] = "medication"
    drug: Drug
    dose: Annotated[Number, Field(ge=0, le=100_000)] | None = None
    unit: str | None = None
    route: Annotated[str, Field(max_length=20)] | None = None
    frequency: Frequency = "once"
    start: Day
    end: Day | None = None
    status: ResultStatus = "final"
    recorded_at: When | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_alias(cls, v: Any) -> Any:
        return _STATUS_ALIASES.get(v, v) if isinstance(v, str) else v

    @field_validator("drug", mode="before")
    @classmethod
    def _drug_alias(cls, v: Any) -> Any:
        if isinstance(v, str):
            k = v.strip().lower()
            return DRUG_ALIASES.get(k, k.replace(" ", "_"))
        return v

    @field_validator("unit", mode="before")
    @classmethod
    def _dose_unit(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, str):
            raise ValueError("a dose unit must be text (mg, g, mg/kg, mg/m2, ...)")
        u = v.strip().lower().replace(" ", "").replace("\u00b5g", "ug").replace("m^2", "m2").replace("m\u00b2", "m2")
        if u not in DOSE_UNITS_TO_MG and u not in RELATIVE_DOSE_UNITS and u not in OTHER_DOSE_UNITS:
            accepted = sorted(set(DOSE_UNITS_TO_MG) | RELATIVE_DOSE_UNITS | OTHER_DOSE_UNITS)
            raise ValueError(f"dose unit {v!r} is not accepted (accepted: {', '.join(accepted)})")
        return u

    @field_validator("recorded_at")
    @classmethod
    def _aware(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        return in_zone(v, info) if v is not None else None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "MedicationEvent":
        if self.end is not None and self.end < self.start:
            raise FieldError(f"end {self.end} is before start {self.start}", "end")
        if self.dose is not None and self.unit is None:
            raise FieldError("a dose needs its unit (mg, g, mg/kg, mg/m2, ...)", "unit")
        ctx = context_of(info)
        check_day("start", self.start, ctx, why="a course or administration cannot start in the future")
        check_day("end", self.end, ctx, latest=planned_end_limit(ctx) if ctx else None,
                  why="too far ahead for a planned end: leave `end` out for a course that goes on")
        check_time("recorded_at", self.recorded_at, ctx)
        return self

    @property
    def dose_mg(self) -> float | None:
        """The dose per administration in mg, when its unit is an absolute mass."""
        if self.dose is None or self.unit not in DOSE_UNITS_TO_MG:
            return None
        return self.dose * DOSE_UNITS_TO_MG[self.unit]

    def active_on(self, day: date) -> bool:
        """A course is active from start to end inclusive; a single administration on its day."""
        if self.frequency == "once":
            end = self.end or self.start
        else:
            end = self.end or date.max
        return self.start <= day <= end

    def _identity_payload(self) -> dict[str, Any]:
        return {"p": self.patient_id, "d": self.drug, "s": self.start.isoformat(),
                "e": self.end.isoformat() if self.end else None, "dose": self.dose, "u": self.unit,
                "f": self.frequency, "r": self.route}


Event = Annotated[Union[Patient, LabResult, MedicationEvent], Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Patient | LabResult | MedicationEvent] = TypeAdapter(Event)


@dataclass(frozen=True)
class Problem:
    """One reason an input was rejected: which field, what value, why."""

    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}={self.value}: {self.reason}"


class InvalidEvent(ValueError):
    """Input that is not a valid event; `problems` names every field, value and reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def problems_of(exc: ValidationError, raw: Any = None) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err.get("loc", ()) if p not in ("patient", "lab", "medication")]
        field = ".".join(loc)
        value = err.get("input")
        if err.get("type") == "missing":
            value = "(missing)"  # pydantic's input here is the whole object, not the field's value
        cause = (err.get("ctx") or {}).get("error")
        if not field:
            # a whole-model check (unit, range, dates): name the field it was about
            field = cause.field if isinstance(cause, FieldError) else "(event)"
            if isinstance(raw, dict) and field in raw:
                value = raw[field]
            elif field != "(event)":
                value = "(missing)"  # e.g. a dose without its unit: not the whole object
        reason = err.get("msg", "invalid").removeprefix("Value error, ")
        problems.append(Problem(field=field, value=_short(value), reason=reason))
    return problems


def parse_event(raw: Any, context: ValidationContext | None = None) -> Patient | LabResult | MedicationEvent:
    """Validate one decoded object into an event, or raise InvalidEvent with every problem.

    `context` (monitor.validation) says when the payload was received and the zone of times written
    without an offset. Ingestion always passes it; without it (tests, already-stored data) times
    without an offset are UTC and only the fixed lower bound of clinical dates applies."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem("(line)", _short(raw), "expected a JSON object")])
    if raw.get("type") not in ("patient", "lab", "medication"):
        raise InvalidEvent([Problem("type", _short(raw.get("type")), "must be one of patient, lab, medication")])
    try:
        return EVENT_ADAPTER.validate_python(raw, context=context)
    except ValidationError as exc:
        raise InvalidEvent(problems_of(exc, raw)) from None


# ------------------------------------------------------------------ trusted (already validated) data

_MISSING: Any = object()
_object_setattr = object.__setattr__


def _field_template(model: type[BaseModel]) -> dict[str, Any]:
    """Every field in declaration order with its default (_MISSING for a required field).

    construct_trusted relies on what our event models are: plain constant defaults, no aliases,
    no default factories, no private attributes, no post-init hook. Checked here, at import, so a
    model change that breaks an assumption fails loudly instead of building wrong events."""
    assert not model.__private_attributes__ and not model.__pydantic_post_init__, model
    template: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        assert f.alias is None and f.validation_alias is None and f.default_factory is None, (model, name)
        template[name] = _MISSING if f.is_required() else f.default
    return template


_TEMPLATES: dict[type[BaseModel], dict[str, Any]] = {m: _field_template(m) for m in (Patient, LabResult, MedicationEvent)}
_REQUIRED: dict[type[BaseModel], frozenset[str]] = {
    m: frozenset(k for k, v in t.items() if v is _MISSING) for m, t in _TEMPLATES.items()
}


def construct_trusted(model: type[_E], values: dict[str, Any]) -> _E:
    """model.model_construct(**values), for already-validated values, at a fraction of its cost.

    Same result as model_construct (a unit test compares the two): fields in declaration order,
    defaults for the missing optional fields, unknown keys ignored, fields_set = the fields given.
    model_construct walks aliases and defaults field by field; this is one dict merge, which
    matters when a nightly run rebuilds ~100 events per patient from storage and egfr_series
    derives a value per creatinine."""
    template, required = _TEMPLATES[model], _REQUIRED[model]
    data = {**template, **values}
    # no unknown key (the merge added none), and every required field given: either all fields
    # were given (a stored payload, the usual case: two length checks) or the required ones were
    if len(data) == len(template) and (len(values) == len(template) or required.issubset(values)):
        fields_set = set(values)  # every key given is a field
    else:
        # an unknown key (ignored, as model_construct does) or a required field not given (left
        # unset, as model_construct does): the slow, careful path
        data = {k: v for k in template if (v := values.get(k, template[k])) is not _MISSING}
        fields_set = values.keys() & template.keys()
    obj = model.__new__(model)
    _object_setattr(obj, "__dict__", data)
    _object_setattr(obj, "__pydantic_fields_set__", fields_set)
    _object_setattr(obj, "__pydantic_extra__", None)
    _object_setattr(obj, "__pydantic_private__", None)
    return obj
