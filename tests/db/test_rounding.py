"""Numbers rounded to their standard error: the one rule the dashboard, report and jobs use."""

from __future__ import annotations

import math

import pytest

from db.rounding import fmt_se, round_to_se, se_decimals


@pytest.mark.parametrize(
    "value,se,text",
    [
        (-4.082279178605771, 0.0213, "-4.08 ± 0.02"),  # the HTML report's number in the issue
        (-4.082279178605771, 0.0149, "-4.082 ± 0.015"),  # leading 1: two figures
        (2.35, 0.5, "2.4 ± 0.5"),
        (1234.5, 37.0, "1230 ± 40"),
        (-1.075, 0.00012, "-1.07500 ± 0.00012"),
        (0.0, 0.3, "0.0 ± 0.3"),
    ],
)
def test_value_and_se_share_the_decimal_place(value, se, text):
    assert fmt_se(value, se) == text


def test_without_a_standard_error_four_figures_and_missing_is_a_dash():
    assert fmt_se(-4.082279178605771) == "-4.082"
    assert fmt_se(-4.082279178605771, 0.0) == "-4.082"
    assert fmt_se(None) == "-" and fmt_se(float("nan"), 0.1) == "-"
    assert fmt_se(float("inf"), 0.1) == "inf"


def test_decimals_agree_with_brute_force():
    for se in (0.0213, 0.15, 0.99, 1.0, 9.5, 19.0, 250.0, 3e-7):
        places = se_decimals(se)
        first = abs(se) / 10 ** math.floor(math.log10(se))
        figures = 2 if first < 2 else 1
        # the last kept figure of se sits at 10^-places
        assert math.floor(math.log10(se)) - figures + 1 == -places
        v, s, p = round_to_se(1.23456789, se)
        assert p == places and s == round(se, places)
