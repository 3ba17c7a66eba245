"""Webhook signatures: only the exact body, signed with the secret, recently, is accepted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import Unauthenticated
from billing.webhooks import sign, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"charge.settled"}'
NOW = 1_700_000_000


def test_a_fresh_signature_verifies() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW, tolerance_s=300)


def test_the_header_has_the_documented_shape() -> None:
    header = sign(SECRET, BODY, NOW)
    t_part, v1_part = header.split(",")
    assert t_part == f"t={NOW}"
    assert v1_part.startswith("v1=")
    assert len(v1_part) == len("v1=") + 64


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthenticated, match="missing"):
        verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


@pytest.mark.parametrize(
    "header",
    ["garbage", "t=123", "v1=abc", "t=abc,v1=abc", "t=,v1=abc", "t=123,v1=", "t=-5,v1=ab"],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


def test_another_secret_is_refused() -> None:
    header = sign("whsec_other", BODY, NOW)
    with pytest.raises(Unauthenticated, match="does not match"):
        verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


def test_a_changed_timestamp_is_refused() -> None:
    header = sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(Unauthenticated, match="does not match"):
        verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


@pytest.mark.parametrize("age", [-301, 301, 86_400])
def test_a_timestamp_outside_the_tolerance_is_refused(age: int) -> None:
    header = sign(SECRET, BODY, NOW - age)
    with pytest.raises(Unauthenticated, match="tolerance"):
        verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


@pytest.mark.parametrize("age", [-300, 0, 300])
def test_the_tolerance_edges_are_accepted(age: int) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW - age), now=NOW, tolerance_s=300)


def test_any_matching_v1_among_several_is_accepted() -> None:
    good = sign(SECRET, BODY, NOW)
    header = f"t={NOW},v1={'0' * 64},{good.split(',')[1]},v0=ignored"
    verify(SECRET, BODY, header, now=NOW, tolerance_s=300)


@given(
    body=st.binary(min_size=1, max_size=512),
    data=st.data(),
)
def test_any_single_byte_change_in_the_body_is_refused(body: bytes, data: st.DataObject) -> None:
    header = sign(SECRET, body, NOW)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    new_byte = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != body[index]), label="byte"
    )
    tampered = body[:index] + bytes([new_byte]) + body[index + 1 :]
    verify(SECRET, body, header, now=NOW, tolerance_s=300)
    with pytest.raises(Unauthenticated, match="does not match"):
        verify(SECRET, tampered, header, now=NOW, tolerance_s=300)
