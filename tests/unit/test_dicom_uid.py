"""dicom.uid: the one UID rule (PS3.5 §9.1), on strings and encoded bytes, no Django needed."""

from __future__ import annotations

import pickle

import pytest

from dicom.uid import InvalidUid, Uid, uid_is_acceptable, uid_parse


@pytest.mark.parametrize(
    "uid",
    ["1.2.840.10008.1.2.1", "0", "1.0.2", "2.25.329800735698586629295641978511506172918", "1." + "2" * 62],
)
def test_it_accepts_valid_uids(uid: str) -> None:
    assert uid_is_acceptable(uid)
    assert uid_parse(uid) == Uid(uid, conformant=True)


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "1.02",
        "01.2",
        "1..2",
        ".1.2",
        "1.2.",
        "1.2 ",
        " 1.2",
        "1.2\0",
        "1.a",
        "1,2",
        "1.2-3",
        "1." + "2" * 63,
        "١.٢",
    ],
)
def test_it_finds_no_conformant_uid_in_these(uid: str) -> None:
    """None of these is a UID by the letter of PS3.5 §9.1 (the verdict is unchanged); only the
    leading-zero ones are accepted anyway (see test_it_accepts_leading_zeros_as_non_conformant)."""
    assert not (uid_is_acceptable(uid) and uid_parse(uid).conformant)


@pytest.mark.parametrize("uid", ["1.02", "01.2", "1.2.03", "1.2.03.4", "00.1"])
def test_it_accepts_leading_zeros_as_non_conformant(uid: str) -> None:
    assert uid_is_acceptable(uid)
    assert uid_parse(uid) == Uid(uid, conformant=False)


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        ("", "empty"),
        ("\0", "empty"),
        ("1." + "2" * 63, "too-long"),
        ("1.a", "bad-character"),
        ("1,2", "bad-character"),
        (" 1.2", "bad-character"),
        ("١.٢", "bad-character"),
        ("1.2.3\\1.2.4", "bad-character"),  # a multi-valued UI
        ("1..2", "empty-component"),
        (".1.2", "empty-component"),
        ("1.2.", "empty-component"),
    ],
)
def test_it_says_why_a_uid_is_invalid(uid: str, reason: str) -> None:
    with pytest.raises(InvalidUid) as caught:
        uid_parse(uid)
    assert caught.value.reason == reason
    assert not uid_is_acceptable(uid)


def test_it_strips_the_padding_of_an_encoded_value_only() -> None:
    assert uid_parse(b"1.2.840.10008.1.2\x00").value == "1.2.840.10008.1.2"
    assert uid_parse("1.2.3 ").value == "1.2.3"
    # Text from a URL has no padding to strip: a trailing NUL or space there is not a UID.
    assert not uid_is_acceptable("1.2.3 ") and not uid_is_acceptable("1.2.3\0")


def test_it_raises_errors_that_survive_pickling() -> None:
    copy = pickle.loads(pickle.dumps(InvalidUid("too-long")))
    assert (copy.reason, str(copy)) == ("too-long", str(InvalidUid("too-long")))
