"""Numbers for people: a value rounded to its standard error, the one rule used everywhere
(run header, runs table, HTML report, job messages). Plain Python, no torch.

The standard error keeps one significant figure (two when it starts with a 1, so that 0.14
is not shown as 0.1, a 40% change), and the value is rounded to the same decimal place:
-4.082279178605771 with standard error 0.0213 is "-4.08 ± 0.02". Without a standard error
a value keeps `digits` significant figures.
"""

from __future__ import annotations

import math


def se_decimals(se: float) -> int:
    """Decimal places that keep the standard error's significant figures (may be negative)."""
    exponent = math.floor(math.log10(abs(se)))
    leading = abs(se) / 10**exponent
    figures = 2 if leading < 2 else 1
    return -(exponent - figures + 1)


def round_to_se(value: float, se: float | None) -> tuple[float, float | None, int]:
    """(value, se, decimals): both rounded to the decimal place the standard error sets."""
    if se is None or not math.isfinite(se) or se <= 0 or not math.isfinite(value):
        return value, se, 0
    places = se_decimals(se)
    return round(value, places), round(se, places), places


def fmt_se(value: float | None, se: float | None = None, *, digits: int = 4) -> str:
    """'-4.08 ± 0.02'; '-4.082' without a standard error; '-' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if not math.isfinite(value):
        return str(value)
    if se is None or not math.isfinite(se) or se <= 0:
        return f"{value:.{digits}g}"
    v, s, places = round_to_se(value, se)
    places = max(places, 0)
    return f"{v:.{places}f} ± {s:.{places}f}"
