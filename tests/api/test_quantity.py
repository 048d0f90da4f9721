"""resource.Quantity parsing, canonical text, arithmetic and the pydantic field type."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kcore.api.quantity import (
    QUANTITY_REGEX,
    Format,
    Quantity,
    QuantityStr,
    canonical_quantity,
    parse_quantity,
)

BIN, DEC, EXP = Format.BINARY_SI, Format.DECIMAL_SI, Format.DECIMAL_EXPONENT


@pytest.mark.parametrize(
    ("text", "canonical", "fmt"),
    [
        ("0", "0", DEC),
        ("-0", "0", DEC),
        ("0Ki", "0", BIN),
        ("1", "1", DEC),
        ("1024", "1024", DEC),
        ("1k", "1k", DEC),
        ("1000k", "1M", DEC),
        ("1500k", "1500k", DEC),
        ("1000m", "1", DEC),
        ("100m", "100m", DEC),
        ("0.5", "500m", DEC),
        ("0.1", "100m", DEC),
        ("1.5", "1500m", DEC),
        ("1.500", "1500m", DEC),
        ("1.001", "1001m", DEC),
        ("01", "1", DEC),
        ("+1", "1", DEC),
        ("-1", "-1", DEC),
        ("-1.5", "-1500m", DEC),
        ("1.G", "1G", DEC),
        (".5", "500m", DEC),
        (".", "0", DEC),
        ("1E", "1E", DEC),
        ("1000E", "1000E", DEC),  # beyond the table: still parses back to the value
        ("1n", "1n", DEC),
        ("1u", "1u", DEC),
        ("1000u", "1m", DEC),
        ("1Ki", "1Ki", BIN),
        ("1023Ki", "1023Ki", BIN),
        ("1024Mi", "1Gi", BIN),
        ("1.5Gi", "1536Mi", BIN),
        ("1.5Ki", "1536", BIN),
        ("0.5Ki", "512", BIN),
        ("10000000Ki", "10000000Ki", BIN),
        ("1Ei", "1Ei", BIN),
        ("1024Ei", "9223372036854775807", BIN),  # capped at the largest int64
        ("8Ei", "9223372036854775807", BIN),
        ("-8Ei", "-9223372036854775807", BIN),
        ("1.1Ki", "1126400m", BIN),  # not an integer: printed as DecimalSI
        ("0.0001Ki", "102400u", DEC),  # below one: format becomes DecimalSI
        ("2e3", "2e3", EXP),
        ("2E3", "2e3", EXP),
        ("1e+3", "1e3", EXP),
        ("12e6", "12e6", EXP),
        ("129e6", "129e6", EXP),
        ("1e2", "100", EXP),
        ("1.5e3", "1500", EXP),
        ("12e-4", "1200e-6", EXP),
        ("1e-3", "1e-3", EXP),
        ("1e0", "1", EXP),
        ("1e-1000000000", "1e-9", EXP),  # rounds up to 1n
        ("1.0000000001", "1000000001n", DEC),  # more precise than 1n: rounded up
        ("0.0000000001", "1n", DEC),
        ("0.1n", "1n", DEC),
        ("-0.1n", "-1n", DEC),  # away from zero, like Kubernetes
        ("1.0000000000000000000000001", "1000000001n", DEC),
    ],
)
def test_canonical_forms(text: str, canonical: str, fmt: Format) -> None:
    q = parse_quantity(text)
    assert str(q) == canonical
    assert q.format is fmt
    assert canonical_quantity(text) == canonical


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.5Gi", Fraction(1610612736)),
        ("2e3", Fraction(2000)),
        ("100m", Fraction(1, 10)),
        ("1Mi", Fraction(2**20)),
        ("2.7Ki", Fraction(27648, 10)),
        ("1.0000000001", Fraction(1_000_000_001, 10**9)),
        ("-250m", Fraction(-1, 4)),
        ("1E", Fraction(10**18)),
    ],
)
def test_exact_value(text: str, value: Fraction) -> None:
    assert parse_quantity(text).value == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "quantities must match the regular expression"),
        ("abc", "quantities must match the regular expression"),
        ("+", "quantities must match the regular expression"),
        ("-", "quantities must match the regular expression"),
        (" 1", "quantities must match the regular expression"),
        ("1 ", "quantities must match the regular expression"),
        ("1.2.3", "quantities must match the regular expression"),
        ("1Ki ", "quantities must match the regular expression"),
        ("0x10", "quantities must match the regular expression"),
        ("1e", "unable to parse quantity's suffix"),
        ("1e-", "unable to parse quantity's suffix"),
        ("1K", "unable to parse quantity's suffix"),
        ("1ki", "unable to parse quantity's suffix"),
        ("1KiB", "quantities must match the regular expression"),
        ("1Ki+5", "unable to parse quantity's suffix"),
        ("1m5", "unable to parse quantity's suffix"),
        ("1eE5", "unable to parse quantity's suffix"),
        ("1e99999999999999999999", "unable to parse quantity's suffix"),
        ("1e5000", "too large"),
        ("1" * 1001, "too many digits"),
    ],
)
def test_rejects_garbage_naming_the_value(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    message = str(info.value)
    assert reason in message
    assert f'"{text}"' in message


def test_format_error_quotes_kubernetes_regex() -> None:
    with pytest.raises(ValueError, match="quantities must match the regular expression") as info:
        parse_quantity("ten")
    assert f"'{QUANTITY_REGEX}'" in str(info.value)
    assert QUANTITY_REGEX == r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [(2, "2"), (0, "0"), (-3, "-3"), (1.5, "1500m"), (0.1, "100m"), (2.0, "2"), (1e-05, "10e-6"), (1e16, "10e15")],
)
def test_numbers_are_accepted(value: int | float, canonical: str) -> None:
    assert str(parse_quantity(value)) == canonical


@pytest.mark.parametrize("value", [True, False, math.inf, -math.inf, math.nan])
def test_non_quantity_numbers_rejected(value: float) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)


def test_other_types_rejected() -> None:
    with pytest.raises(TypeError):
        parse_quantity([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "milli", "integer"),
    [
        ("1", 1000, 1),
        ("100m", 100, 1),
        ("1500m", 1500, 2),
        ("0.1m", 1, 1),
        ("1n", 1, 1),
        ("1.0001", 1001, 2),
        ("-1n", -1, -1),
        ("-1500m", -1500, -2),
        ("1Ki", 1_024_000, 1024),
        ("0", 0, 0),
        ("2e3", 2_000_000, 2000),
    ],
)
def test_scaled_values_round_away_from_zero(text: str, milli: int, integer: int) -> None:
    q = parse_quantity(text)
    assert q.milli_value() == milli
    assert q.int_value() == integer


def test_scaled_value_in_any_unit() -> None:
    q = parse_quantity("1.5Gi")
    assert q.scaled_value(0) == 1610612736
    assert q.scaled_value(6) == 1611  # mega, rounded up
    assert q.scaled_value(-9) == 1610612736 * 10**9


def test_constructors() -> None:
    assert str(Quantity.from_milli(250)) == "250m"
    assert str(Quantity.from_int(2048, Format.BINARY_SI)) == "2Ki"
    assert Quantity.from_int(1) == parse_quantity("1000m")


def test_equality_ordering_and_hash_use_the_value() -> None:
    assert parse_quantity("1Ki") == parse_quantity("1024")
    assert hash(parse_quantity("1Ki")) == hash(parse_quantity("1024"))
    assert parse_quantity("999m") < parse_quantity("1") <= parse_quantity("1000m")
    assert parse_quantity("1Gi") > parse_quantity("1G") >= parse_quantity("1e9")
    assert parse_quantity("1") != parse_quantity("1001m")
    assert parse_quantity("1").__eq__(1) is NotImplemented
    assert sorted([parse_quantity(s) for s in ("1Gi", "1", "500m")]) == [
        parse_quantity("500m"),
        parse_quantity("1"),
        parse_quantity("1Gi"),
    ]
    with pytest.raises(TypeError):
        _ = parse_quantity("1") < 2  # type: ignore[operator]


def test_arithmetic_keeps_left_format_unless_zero() -> None:
    total = parse_quantity("1Gi") + parse_quantity("512Mi")
    assert str(total) == "1536Mi"
    assert total.format is BIN
    assert str(parse_quantity("1") + parse_quantity("1Ki")) == "1025"
    assert (parse_quantity("0") + parse_quantity("1Ki")).format is BIN
    assert str(parse_quantity("2") - parse_quantity("2500m")) == "-500m"
    assert str(-parse_quantity("1Ki")) == "-1Ki"
    assert str(abs(parse_quantity("-3"))) == "3"
    assert not parse_quantity("0")
    assert parse_quantity("1n")
    assert parse_quantity("-5").sign() == -1 and parse_quantity("0").is_zero()


def test_sum_of_requests() -> None:
    cpus = [parse_quantity(s) for s in ("100m", "250m", "1", "0.5")]
    assert sum(cpus) == parse_quantity("1850m")
    assert str(sum(cpus)) == "1850m"
    assert sum(q.milli_value() for q in cpus) == 1850


def test_quantity_is_immutable() -> None:
    q = parse_quantity("1")
    with pytest.raises(AttributeError):
        q.nanos = 5  # type: ignore[misc]


def test_repr_and_float() -> None:
    assert repr(parse_quantity("1.5Gi")) == "Quantity('1536Mi', BinarySI)"
    assert parse_quantity("250m").as_float() == 0.25


# --- the pydantic field type ---------------------------------------------------


class _Resources(BaseModel):
    limits: dict[str, QuantityStr] | None = None
    storage: QuantityStr | None = None


def test_quantity_str_stores_canonical_text() -> None:
    model = _Resources.model_validate(
        {"limits": {"cpu": 2, "memory": "1.5Gi", "gpu": 0.5, "eph": " 100m "}, "storage": "1000m"}
    )
    assert model.limits == {"cpu": "2", "memory": "1536Mi", "gpu": "500m", "eph": "100m"}
    assert model.storage == "1"
    assert model.model_dump(mode="json")["limits"]["memory"] == "1536Mi"
    # Canonical text is a fixed point of the field.
    assert _Resources.model_validate(model.model_dump()).model_dump() == model.model_dump()


@pytest.mark.parametrize("bad", ["abc", "1K", True, [1], None])
def test_quantity_str_rejects_non_quantities(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        _Resources.model_validate({"limits": {"cpu": bad}})
    assert info.value.errors()[0]["loc"] == ("limits", "cpu")


def test_quantity_str_error_message_names_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        _Resources.model_validate({"storage": "ten"})
    assert 'cannot parse quantity "ten": quantities must match the regular expression' in str(info.value)


# --- properties ------------------------------------------------------------------

_DEC_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}

_suffixes = st.one_of(
    st.sampled_from(sorted(_DEC_SUFFIXES)),
    st.sampled_from(sorted(_BIN_SUFFIXES)),
    st.builds(lambda e, exp: f"{e}{exp:+d}" if exp < 0 else f"{e}{exp}", st.sampled_from("eE"), st.integers(-30, 30)),
)
_digits = st.text("0123456789", min_size=0, max_size=12)


@st.composite
def quantity_texts(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(_digits)
    fraction = draw(st.one_of(st.none(), _digits))
    if not whole and fraction is None:
        whole = "0"
    number = whole + ("" if fraction is None else "." + fraction)
    return sign + number + draw(_suffixes)


def _reference_nanos(text: str) -> int:
    """An independent model of the parsing rules, with Fractions."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    i = 0
    while i < len(body) and (body[i].isdigit() or body[i] == "."):
        i += 1
    number, suffix = body[:i], body[i:]
    whole, _, fraction = number.partition(".")
    value = Fraction(int(whole or "0")) + (Fraction(int(fraction), 10 ** len(fraction)) if fraction else 0)
    if suffix in _DEC_SUFFIXES:
        value *= Fraction(10) ** _DEC_SUFFIXES[suffix]
    elif suffix in _BIN_SUFFIXES:
        value *= 2 ** _BIN_SUFFIXES[suffix]
    else:
        value *= Fraction(10) ** int(suffix[1:])
    nanos = math.ceil(value * 10**9)
    if suffix in _BIN_SUFFIXES:
        nanos = min(nanos, ((1 << 63) - 1) * 10**9)
    return sign * nanos


@given(quantity_texts())
def test_parse_matches_reference_model(text: str) -> None:
    assert parse_quantity(text).nanos == _reference_nanos(text)


@given(quantity_texts())
def test_canonical_text_round_trips(text: str) -> None:
    q = parse_quantity(text)
    again = parse_quantity(str(q))
    assert again == q
    assert str(again) == str(q)  # canonical form is a fixed point


@given(quantity_texts())
def test_canonical_text_shape(text: str) -> None:
    canonical = str(parse_quantity(text))
    number = canonical.lstrip("-")
    assert "." not in number and "+" not in number
    assert number == "0" or not number.startswith("0")


@given(quantity_texts(), quantity_texts())
def test_addition_is_exact(a: str, b: str) -> None:
    qa, qb = parse_quantity(a), parse_quantity(b)
    assert (qa + qb).value == qa.value + qb.value
    assert (qa + qb) - qb == qa
    assert (qa < qb) == (qa.value < qb.value)


@given(st.integers(-(10**15), 10**15))
def test_milli_round_trip(milli: int) -> None:
    q = Quantity.from_milli(milli)
    assert q.milli_value() == milli
    assert parse_quantity(str(q)).milli_value() == milli
    assert q.int_value() == (math.ceil(milli / 1000) if milli >= 0 else -math.ceil(-milli / 1000))


def test_sums_beyond_exbi_stay_exact() -> None:
    # Parsing caps BinarySI at int64, but sums can exceed it: print with "Ei",
    # never with a suffix-less number that would read back as a different value.
    total = Quantity.from_int(2**62, Format.BINARY_SI) + Quantity.from_int(2**62, Format.BINARY_SI)
    assert str(total) == "8Ei"
    big = Quantity.from_int(2**70, Format.BINARY_SI)
    assert str(big) == "1024Ei"
    assert str(Quantity.from_int(10**21)) == "1000E"
    assert str(Quantity.from_int(10**21, Format.DECIMAL_EXPONENT)) == "1e21"
