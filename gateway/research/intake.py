"""Intake of research rows: validate against the instrument, pseudonymise identifiers at once.

Pure functions of the agreement, the instrument, the rows and the project's
pseudonymiser; the service seals and stores what they return. A row may carry only the
fields its instrument delivers (questionnaires also the respondent's consent). Every
identifier is normalised (``gateway.identifiers``) and replaced by the project's keyed
pseudonym under the field the release reads (``pseudonym_field``); the raw identifier
goes no further. Free text is not kept. Problems name the row and the field, never a
value.

Identifiers that fail their check (a BSN failing the 11-test, an IBAN failing mod-97)
are not stored and are counted per field, as registrations do contain typing errors;
anything else that does not fit (unknown fields, wrong types, missing or wrong consent,
a kept value outside the agreement's code list or range, a row left without any
identifier that links it to a person) refuses the whole batch.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import compress, repeat
from typing import Any

from gateway.errors import InvalidInputError
from gateway.identifiers import NORMALISERS, IdType
from gateway.policy.schema import CategorySchema, validate_record
from gateway.research.agreements import Agreement, Instrument, InstrumentKind, ValueRange
from gateway.research.errors import MAX_PROBLEMS_SHOWN, RowsRefusedError
from gateway.research.extract import pseudonym_field
from gateway.research.fields import FieldKind, field_kind
from gateway.research.intake_columns import (
    DAYS,
    folded,
    folded_bsns,
    folded_ibans,
    names,
    pseudonyms_of,
)
from gateway.research.pseudonyms import Pseudonymiser
from gateway.research.transforms import TransformKind

MAX_BATCH_ROWS = 5_000
MAX_CODED_LENGTH = 100
MAX_IDENTIFIER_LENGTH = 200
RESPONDENT_ID_TYPE = "respondent"
"""The identifier type of questionnaire respondent ids in the project's pseudonymiser."""
RESPONDENT_FIELD = "respondent_id"
QUESTIONNAIRE_CONSENT = ("consent_version", "consent_date", "parental_consent")
_TRUE = frozenset({"true", "yes", "ja", "1"})
_FALSE = frozenset({"false", "no", "nee", "0"})


@dataclass(frozen=True, slots=True)
class PseudonymSpec:
    """One pseudonym intake computes: from which fields, as which identifier type, into which."""

    field: str
    id_type: IdType
    sources: tuple[str, ...]


@dataclass(frozen=True)
class IntakePlan:
    """What a row of one instrument may carry, and what becomes of each field."""

    agreement: Agreement
    instrument: Instrument
    schema: CategorySchema
    accepted: frozenset[str]
    stored: tuple[str, ...]
    pseudonyms: tuple[PseudonymSpec, ...]
    codes: Mapping[str, tuple[frozenset[str] | None, ValueRange | None]] = field(
        default_factory=dict
    )
    """Per delivered field: the values (or range) the agreement's kept columns allow."""

    @property
    def questionnaire(self) -> bool:
        """Whether rows carry a respondent and the respondent's consent."""
        return self.instrument.kind is InstrumentKind.QUESTIONNAIRE

    @classmethod
    def build(
        cls, agreement: Agreement, instrument: Instrument, schema: CategorySchema
    ) -> IntakePlan:
        """Return the plan for rows of ``instrument`` (a category ``schema`` from the vocabulary).

        Stored as given (sealed): the delivered fields that are neither identifiers nor
        free text, and a questionnaire's consent. Pseudonymised: every pseudonymised
        column of the agreement whose sources the instrument delivers.
        """
        delivered = set(instrument.fields)
        identifiers = set(schema.identifier_fields())
        stored = [
            name
            for name in instrument.fields
            if name not in identifiers
            and field_kind(name) not in (FieldKind.DIRECT_IDENTIFIER, FieldKind.FREE_TEXT)
            and (name not in schema.fields or schema.fields[name].base != "free-text")
        ]
        accepted = set(delivered)
        if instrument.kind is InstrumentKind.QUESTIONNAIRE:
            stored += [c for c in QUESTIONNAIRE_CONSENT if c not in stored]
            accepted.update(QUESTIONNAIRE_CONSENT)
        specs = []
        for column in agreement.released_columns:
            t = column.transform
            if t.kind is TransformKind.PSEUDONYMISE and set(column.source) <= delivered:
                assert t.id_type is not None
                spec = PseudonymSpec(pseudonym_field(column), t.id_type, column.source)
                if spec not in specs:
                    specs.append(spec)
        codes: dict[str, tuple[frozenset[str] | None, ValueRange | None]] = {}
        for column in agreement.released_columns:
            if column.transform.kind is not TransformKind.KEEP or column.source[0] not in delivered:
                continue
            allowed = agreement.allowed_values(column)
            codes[column.source[0]] = (
                None if allowed is None else frozenset(allowed),
                column.value_range,
            )
        return cls(
            agreement=agreement,
            instrument=instrument,
            schema=schema,
            accepted=frozenset(accepted),
            stored=tuple(stored),
            pseudonyms=tuple(specs),
            codes=codes,
        )


@dataclass(frozen=True)
class Prepared:
    """A batch after intake: per row, what to seal and its respondent's pseudonym.

    ``payloads[i]`` holds row ``i``'s stored values and pseudonyms, ``respondent_keys[i]``
    its respondent's pseudonym (None outside questionnaires); ``invalid_identifiers``
    counts identifiers that failed their check, by source field.
    """

    payloads: list[dict[str, Any]]
    respondent_keys: list[str | None]
    invalid_identifiers: Counter[str]


def _flag(value: Any) -> bool | None:
    """Return a yes/no answer (JSON boolean or text such as ``true``/``ja``), or None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("must be true or false")


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def normalise_respondent(value: Any) -> str:
    """Return a respondent id as compared and pseudonymised: trimmed text of 1-64 characters.

    Raises InvalidInputError (naming the field, not the value) otherwise.
    """
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 64:
        raise InvalidInputError(
            f"{RESPONDENT_FIELD} must be text of 1 to 64 characters", field=RESPONDENT_FIELD
        )
    text = value.strip()
    if not text.isprintable():
        raise InvalidInputError(
            f"{RESPONDENT_FIELD} must be printable text", field=RESPONDENT_FIELD
        )
    return text


def respondent_key(pseudonymiser: Pseudonymiser, value: Any) -> str:
    """Return the project's pseudonym of a respondent id; raise InvalidInputError if malformed."""
    return pseudonymiser(RESPONDENT_ID_TYPE, normalise_respondent(value))


def _consent_problems(
    plan: IntakePlan, row: Mapping[str, Any], where: str, today: date
) -> tuple[list[str], bool | None]:
    """Check a questionnaire row's consent; return problems and the parental consent flag."""
    problems: list[str] = []
    instrument = plan.instrument
    try:
        normalise_respondent(row.get(RESPONDENT_FIELD))
    except InvalidInputError as exc:
        problems.append(f"{where}.{RESPONDENT_FIELD}: {exc.detail.split(' ', 1)[1]}")
    if row.get("consent_version") != instrument.consent_text_version:
        problems.append(
            f"{where}.consent_version: must be the instrument's consent text version "
            f"{instrument.consent_text_version}"
        )
    try:
        parental = _flag(row.get("parental_consent"))
    except ValueError as exc:
        problems.append(f"{where}.parental_consent: {exc}")
        parental = None
    consent_text = row.get("consent_date")
    if not isinstance(consent_text, str):
        problems.append(f"{where}.consent_date: the respondent's consent date is required")
        return problems, parental
    try:
        given_on = date.fromisoformat(consent_text)
    except ValueError:
        return problems, parental  # the schema check reports the malformed date
    if given_on > today:
        problems.append(f"{where}.consent_date: lies in the future")
    born_text = row.get("birth_date")
    born: date | None = None
    if isinstance(born_text, str):
        try:
            born = date.fromisoformat(born_text)
        except ValueError:
            born = None
    below = instrument.parental_consent_below
    if (born is None or _age_on(born, given_on) < below) and parental is not True:
        problems.append(
            f"{where}.parental_consent: the respondent was under {below} (or has no birth "
            "date) when consenting, so a parent's consent is required"
        )
    return problems, parental


def check_rows(
    plan: IntakePlan, rows: Sequence[Mapping[str, Any]], today: date
) -> list[dict[str, Any]]:
    """Return the rows with consent flags normalised, or raise RowsRefusedError.

    Refused: too many or no rows, fields the instrument does not deliver, values of the
    wrong type or too long, and questionnaire rows without the instrument's consent text
    version, a consent date, or (below the instrument's age) a parent's consent.
    """
    if not rows:
        raise RowsRefusedError(["a batch needs at least one row"])
    if len(rows) > MAX_BATCH_ROWS:
        raise RowsRefusedError([f"a batch holds at most {MAX_BATCH_ROWS} rows"])
    problems: list[str] = []
    checked: list[dict[str, Any]] = []
    identifiers = plan.schema.identifier_fields()
    instrument_id = plan.instrument.id
    for index, row in enumerate(rows):
        where = f"rows[{index}]"
        unknown = sorted(set(row) - plan.accepted)
        if unknown:
            problems.append(
                f"{where}: {len(unknown)} field(s) not delivered through instrument "
                f"{instrument_id}; it delivers {', '.join(sorted(plan.accepted))}"
            )
        values = {k: v for k, v in row.items() if k not in unknown}
        typed = {k: v for k, v in values.items() if k != "parental_consent"}
        problems.extend(f"{where}: {p}" for p in validate_record(plan.schema, typed))
        for name, value in typed.items():
            bounds = plan.codes.get(name)
            if bounds is not None and value is not None:
                allowed, value_range = bounds
                if allowed is not None and value not in allowed:
                    problems.append(
                        f"{where}.{name}: not one of the values the agreement lists for it"
                    )
                elif value_range is not None and not value_range.holds(value):
                    problems.append(f"{where}.{name}: outside the range the agreement allows")
            if not isinstance(value, str):
                continue
            limit = MAX_IDENTIFIER_LENGTH if name in identifiers else MAX_CODED_LENGTH
            if len(value) > limit:
                problems.append(f"{where}.{name}: longer than {limit} characters")
        if plan.questionnaire:
            found, parental = _consent_problems(plan, values, where, today)
            problems.extend(found)
            values["parental_consent"] = parental
        checked.append(values)
        if len(problems) > MAX_PROBLEMS_SHOWN * 5:
            break
    if problems:
        raise RowsRefusedError(problems)
    return checked


def _fill(
    payloads: list[dict[str, Any]], target: str, found: list[str | None], by_key: dict[Any, str]
) -> tuple[int, bool]:
    """Put each row's pseudonym into its payload under ``target``.

    Returns how many failed, and whether every row got one (then no row is nameless).

    ``found`` holds per row its identifier's key in ``by_key`` (None: no identifier);
    ``by_key`` maps "" (an identifier failing its check) to "". The loop runs in C
    (``map`` over ``dict.__setitem__``): this is the only per-row work left.
    """
    pseudonyms = list(map(by_key.get, found))
    deque(
        map(
            dict.__setitem__,
            compress(payloads, pseudonyms),
            repeat(target),
            filter(None, pseudonyms),
        ),
        maxlen=0,
    )
    return pseudonyms.count(""), all(pseudonyms)


def _single_source(
    spec: PseudonymSpec,
    rows: Sequence[Mapping[str, Any]],
    payloads: list[dict[str, Any]],
    pseudonymiser: Pseudonymiser,
) -> tuple[int, bool]:
    """Put the pseudonym of ``spec``'s one source into each payload; return as ``_fill``.

    Each distinct spelling is normalised once, each distinct identifier hashed once
    ("1234.56.782" and "123456782" share one HMAC).
    """
    source, kind = spec.sources[0], spec.id_type.value
    spelt = [row.get(source) for row in rows]
    if spec.id_type is IdType.BSN:
        canonical = folded_bsns(spelt)
    elif spec.id_type is IdType.IBAN:
        canonical = folded_ibans(spelt)
    else:
        canonical = folded(spelt, NORMALISERS[spec.id_type])
    by_key = pseudonyms_of(pseudonymiser, kind, canonical.values())
    return _fill(payloads, spec.field, list(map(canonical.get, spelt)), by_key)


def _name_and_birth_date(
    spec: PseudonymSpec,
    rows: Sequence[Mapping[str, Any]],
    payloads: list[dict[str, Any]],
    pseudonymiser: Pseudonymiser,
) -> tuple[int, bool]:
    """Like ``_single_source`` for a name and a birth date; return as ``_fill``.

    Names and birth dates recur far more often than their combinations, so each part is
    folded on its own, once (dates remembered across batches, names within the batch
    only; ``name_birthdate`` gives the same key, slower). A row missing either part has
    no identifier; one whose name or date fails has a failing one.
    """
    (first, second), kind = spec.sources, spec.id_type.value
    spelt_names = [row.get(first) for row in rows]
    days = [row.get(second) for row in rows]
    keys = [
        None if n is None or d is None else f"{n}|{d}" if n and d else ""
        for n, d in zip(names().column(spelt_names), DAYS.column(days), strict=True)
    ]
    by_key = pseudonyms_of(pseudonymiser, kind, keys)
    return _fill(payloads, spec.field, keys, by_key)


def pseudonymise_rows(
    plan: IntakePlan, rows: Sequence[Mapping[str, Any]], pseudonymiser: Pseudonymiser
) -> Prepared:
    """Replace every identifier of ``rows`` by the project's pseudonym; keep the stored fields.

    Identifiers that fail their check are left out and counted by source field; missing
    or empty ones are left out. Rows must have passed ``check_rows``. Raises
    RowsRefusedError if a row is left without any pseudonym (no subject key).
    """
    invalid: Counter[str] = Counter()
    stored = plan.stored
    payloads = [{n: v for n in stored if (v := row.get(n)) is not None} for row in rows]
    everyone = False  # whether one pseudonym alone links every row to a person
    for spec in plan.pseudonyms:
        if spec.id_type is IdType.NAME_BIRTHDATE:
            failed, linked = _name_and_birth_date(spec, rows, payloads, pseudonymiser)
        else:
            failed, linked = _single_source(spec, rows, payloads, pseudonymiser)
        everyone = everyone or linked
        if failed:
            invalid[spec.sources[0]] += failed
    if plan.pseudonyms and not everyone:
        targets = frozenset(spec.field for spec in plan.pseudonyms)
        nameless = [
            f"rows[{i}]" for i, payload in enumerate(payloads) if payload.keys().isdisjoint(targets)
        ]
        if nameless:
            # counted as nobody, such a row would let one person pass for many
            raise RowsRefusedError(
                [
                    f"{where}: no valid identifier links this row to a person "
                    f"({', '.join(sorted({'+'.join(s.sources) for s in plan.pseudonyms}))})"
                    for where in nameless
                ]
            )
    respondents: list[str | None] = (
        _respondent_keys(pseudonymiser, [row[RESPONDENT_FIELD] for row in rows])
        if plan.questionnaire
        else [None] * len(rows)
    )
    return Prepared(payloads, respondents, invalid)


def _respondent_keys(pseudonymiser: Pseudonymiser, spelt: list[Any]) -> list[str | None]:
    """Return ``respondent_key`` of each value, each distinct value normalised and hashed once.

    The first malformed value (in row order) raises, as row by row.
    """
    try:
        distinct = dict.fromkeys(spelt)
    except TypeError:  # a value that cannot be a key: row by row gives its error
        return [respondent_key(pseudonymiser, value) for value in spelt]
    canonical = {value: normalise_respondent(value) for value in distinct}
    by_key = pseudonyms_of(pseudonymiser, RESPONDENT_ID_TYPE, canonical.values())
    return [by_key[canonical[value]] for value in spelt]
