"""Kubernetes ``resource.Quantity``: parsing, canonical form and arithmetic.

A quantity is stored as an exact integer number of nano-units (``nanos``):
Kubernetes rounds every parsed value up (away from zero) to a multiple of
``1n``, and binary suffixes are integers times ``2**k``, so every quantity is an
exact multiple of 1e-9. Integers keep arithmetic exact and fast (the scheduler
sums and compares millicores for every node of every cycle).

The canonical text follows apimachinery's ``Quantity.String()``
(``CanonicalizeBytes``): ``"1.5Gi" -> "1536Mi"``, ``"0.5" -> "500m"``,
``"2e3" -> "2e3"``, ``"1000m" -> "1"``. Two deliberate differences: kcore
always canonicalizes (Kubernetes echoes an input it deems canonical, so
``"+1"`` stays ``"+1"`` there), and values outside a suffix table are still
printed so that they parse back to the same value (Kubernetes drops the suffix
of a DecimalSI value beyond ``E``).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = [
    "Format",
    "Quantity",
    "QuantityStr",
    "QUANTITY_REGEX",
    "parse_quantity",
    "canonical_quantity",
]

#: The pattern Kubernetes quotes in its parse error (``ErrFormatWrong``).
QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

_FORMAT_ERROR = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
_SUFFIX_ERROR = "unable to parse quantity's suffix"

# sign, integer digits, optional "." and fraction digits, suffix (same grammar as
# apimachinery's parseQuantityString; "." alone is zero there too).
_GRAMMAR = re.compile(r"([+-]?)([0-9]*)(\.[0-9]*)?([eEinumkKMGTP]*[-+]?[0-9]*)")
_EXPONENT = re.compile(r"[-+]?[0-9]+")

_NANO = 10**9
_INT64_MAX = (1 << 63) - 1
#: Kubernetes caps BinarySI values at the largest int64.
_BINARY_MAX_NANOS = _INT64_MAX * _NANO
#: Refuse absurd magnitudes (10**1000 and up) so a tiny string cannot make a
#: huge integer; real manifests never get near this.
_MAX_DECIMAL_DIGITS = 1000

_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_DECIMAL_BY_EXPONENT: dict[int, str] = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER: dict[int, str] = {p // 10: s for s, p in _BINARY_SUFFIXES.items()}


class Format(enum.StrEnum):
    """The suffix family a quantity was written in; it picks the canonical text."""

    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


def _ceil_div_abs(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded away from zero (numerator >= 0)."""
    return -(-numerator // denominator)


def _round_up(value: int, unit: int) -> int:
    """``value / unit`` rounded away from zero, as Kubernetes' ScaledValue does."""
    magnitude = _ceil_div_abs(abs(value), unit)
    return -magnitude if value < 0 else magnitude


@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """An exact quantity: ``nanos`` units of 1e-9 plus the format it prints in.

    Equality, hashing and ordering use the value only (like ``Quantity.Cmp``),
    so ``parse_quantity("1Ki") == parse_quantity("1024")``.
    """

    nanos: int
    format: Format = Format.DECIMAL_SI

    @classmethod
    def from_int(cls, value: int, format: Format = Format.DECIMAL_SI) -> Quantity:
        """Like ``resource.NewQuantity``."""
        return cls(value * _NANO, format)

    @classmethod
    def from_milli(cls, value: int, format: Format = Format.DECIMAL_SI) -> Quantity:
        """Like ``resource.NewMilliQuantity`` (CPU in millicores)."""
        return cls(value * 1_000_000, format)

    @property
    def value(self) -> Fraction:
        """The exact value."""
        return Fraction(self.nanos, _NANO)

    def milli_value(self) -> int:
        """Value in thousandths, rounded away from zero (``MilliValue``)."""
        return _round_up(self.nanos, 1_000_000)

    def int_value(self) -> int:
        """Value as an integer, rounded away from zero (``Value``)."""
        return _round_up(self.nanos, _NANO)

    def scaled_value(self, exponent: int) -> int:
        """Value in units of ``10**exponent``, rounded away from zero (``ScaledValue``)."""
        shift = exponent + 9
        if shift <= 0:
            return self.nanos * 10 ** (-shift)
        return _round_up(self.nanos, 10**shift)

    def as_float(self) -> float:
        """An approximate float, for ratios and display only."""
        return self.nanos / _NANO

    def is_zero(self) -> bool:
        return self.nanos == 0

    def sign(self) -> int:
        return (self.nanos > 0) - (self.nanos < 0)

    def __str__(self) -> str:
        return _format(self.nanos, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r}, {self.format.value})"

    # Arithmetic keeps the left operand's format, unless it is zero (as Add does).
    def _result_format(self, other: Quantity) -> Format:
        return other.format if self.nanos == 0 else self.format

    def __add__(self, other: object) -> Quantity:
        if isinstance(other, Quantity):
            return Quantity(self.nanos + other.nanos, self._result_format(other))
        return NotImplemented

    def __radd__(self, other: object) -> Quantity:
        # Lets ``sum(quantities)`` start from the integer 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Quantity:
        if isinstance(other, Quantity):
            return Quantity(self.nanos - other.nanos, self._result_format(other))
        return NotImplemented

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)

    def __abs__(self) -> Quantity:
        return Quantity(abs(self.nanos), self.format)

    def __bool__(self) -> bool:
        return self.nanos != 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos == other.nanos
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos < other.nanos
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos <= other.nanos
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos > other.nanos
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos >= other.nanos
        return NotImplemented


ZERO = Quantity(0, Format.DECIMAL_SI)


def _invalid(text: str, reason: str) -> ValueError:
    return ValueError(f'cannot parse quantity "{text}": {reason}')


def _interpret_suffix(text: str, suffix: str) -> tuple[int, int, Format]:
    """(base, exponent, format) for a suffix, like apimachinery's suffixer."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if abs(exponent) <= _INT64_MAX:  # strconv.ParseInt(..., 64) bounds
            return 10, exponent, Format.DECIMAL_EXPONENT
    raise _invalid(text, _SUFFIX_ERROR)


@lru_cache(maxsize=8192)
def _parse_text(text: str) -> Quantity:
    if text == "":
        raise _invalid(text, _FORMAT_ERROR)
    if text == "0":
        return ZERO
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise _invalid(text, _FORMAT_ERROR)
    sign, whole, dotted, suffix = match.groups()
    if not whole and dotted is None:  # the regex needs at least one of [0-9.]
        raise _invalid(text, _FORMAT_ERROR)
    base, exponent, fmt = _interpret_suffix(text, suffix)

    # value = digits * 10**scale10 * base**exponent; trailing fraction zeros
    # and leading zeros do not change it.
    fraction = (dotted or ".")[1:].rstrip("0")
    digits = (whole + fraction).lstrip("0")
    if len(digits) > _MAX_DECIMAL_DIGITS:
        raise _invalid(text, "quantity has too many digits")
    mantissa = int(digits) if digits else 0
    scale10 = -len(fraction)

    if base == 10:
        power = exponent + scale10 + 9
        if mantissa and len(digits) + exponent + scale10 > _MAX_DECIMAL_DIGITS:
            raise _invalid(text, "quantity is too large")
        if power >= 0:
            nanos = mantissa * 10**power
        elif -power > len(digits):
            nanos = 1 if mantissa else 0  # smaller than 1n: rounds up to 1n
        else:
            nanos = _ceil_div_abs(mantissa, 10 ** (-power))
    else:
        power = scale10 + 9
        scaled = mantissa << exponent
        nanos = scaled * 10**power if power >= 0 else _ceil_div_abs(scaled, 10 ** (-power))

    if fmt is Format.BINARY_SI:
        nanos = min(nanos, _BINARY_MAX_NANOS)
        if 0 < nanos < _NANO:  # a fraction of one: avoid rounding, print decimal
            fmt = Format.DECIMAL_SI
    return Quantity(-nanos if sign == "-" else nanos, fmt)


def parse_quantity(value: str | int | float | Quantity) -> Quantity:
    """Parse Kubernetes quantity text (or a JSON number) exactly.

    Raises ``ValueError`` naming the value when it is not a quantity. Results
    are cached: resource strings repeat across every pod of a workload.
    """
    if isinstance(value, Quantity):
        return value
    if isinstance(value, bool):
        raise _invalid(str(value).lower(), _FORMAT_ERROR)
    if isinstance(value, int):
        return Quantity(value * _NANO, Format.DECIMAL_SI)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(repr(value), _FORMAT_ERROR)
        return _parse_text(repr(value))
    if isinstance(value, str):
        return _parse_text(value)
    raise TypeError(f"a quantity must be a string or a number, not {type(value).__name__}")


def _remove_factors(value: int, factor: int, limit: int | None = None) -> tuple[int, int]:
    """Divide ``factor`` out of ``value`` as often as it goes; return (rest, times)."""
    times = 0
    while value % factor == 0 and (limit is None or times < limit):
        value //= factor
        times += 1
    return value, times


@lru_cache(maxsize=8192)
def _format(nanos: int, fmt: Format) -> str:
    """The canonical text, as ``CanonicalizeBytes`` builds it."""
    if nanos == 0:
        return "0"
    if fmt is Format.BINARY_SI:
        if abs(nanos) < 1024 * _NANO or nanos % _NANO:
            fmt = Format.DECIMAL_SI  # small or fractional: binary would round
        else:
            amount, power = _remove_factors(nanos // _NANO, 1024, limit=6)
            return f"{amount}{_BINARY_BY_POWER.get(power, '')}"
    amount, times = _remove_factors(nanos, 10)
    exponent = times - 9
    while exponent % 3:
        amount *= 10
        exponent -= 1
    if fmt is Format.DECIMAL_EXPONENT:
        return str(amount) if exponent == 0 else f"{amount}e{exponent}"
    if exponent > 18:  # beyond "E": keep the value exact
        amount *= 10 ** (exponent - 18)
        exponent = 18
    return f"{amount}{_DECIMAL_BY_EXPONENT[exponent]}"


def canonical_quantity(value: str | int | float | Quantity) -> str:
    """The canonical text of a quantity; ``ValueError`` when it is not one."""
    return str(parse_quantity(value))


def _canonical_field(value: Any) -> Any:
    """pydantic before-validator: accept str/int/float, store the canonical text.

    Surrounding whitespace is trimmed, as ``Quantity.UnmarshalJSON`` does.
    Anything else is left for pydantic's ``str`` check to reject.
    """
    if isinstance(value, str):
        return canonical_quantity(value.strip())
    if isinstance(value, (int, float, Quantity)):
        return canonical_quantity(value)
    return value


#: A model field holding a quantity, stored and serialized in canonical form.
QuantityStr = Annotated[str, BeforeValidator(_canonical_field)]
