"""
Attribute values to Python values: boto3's `TypeDeserializer` is the reference.

On every value both accept, dynastream returns what boto3 returns, exactly:
numbers keep their digits and exponent (`Decimal("1.50")` stays `1.50`),
binary is `bytes` (boto3 returns `Binary`; compare `.value`), and no float ever
appears. B/BS arrive as bytes from boto3 and as base64 text in Lambda's JSON;
both must give the same bytes.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import given, settings
from hypothesis import strategies as st

from dynastream._deserialize import InvalidAttributeValue, deserialize_image, deserialize_value

BOTO3 = TypeDeserializer()
PREFIX = "dynamodb.NewImage"
CANARY = "canary-4f1e@example.com"

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 to
# 9.9999999999999999999999999999999999999E+125
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
MAX_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130
MAX_ADJUSTED_EXPONENT = 125
# boto3 decodes numbers in a context with Emin=-128 and 38 digits, so its
# smallest exponent is -165: it raises Underflow on 38-digit numbers near
# 1E-130 that DynamoDB stores. Values both accept stay above it.
BOTO3_SMALLEST_EXPONENT = -165


# --- strategies ------------------------------------------------------------


@st.composite
def number_texts(draw: st.DrawFn, *, smallest_exponent: int = BOTO3_SMALLEST_EXPONENT) -> str:
    """Number text within DynamoDB's limits, spelled in one of the ways the number grammar allows."""
    sign = draw(st.sampled_from(["", "", "-", "+"]))
    if draw(st.integers(0, 9)) == 0:
        return sign + draw(st.sampled_from(["0", "0.0", "0.000", "0E+3", "0e-7", ".0"]))
    significant = str(draw(st.integers(1, 10**MAX_DIGITS - 1)))
    trailing_zeros = draw(st.integers(0, MAX_DIGITS - len(significant)))
    digits = significant + "0" * trailing_zeros
    lowest = max(MIN_ADJUSTED_EXPONENT, smallest_exponent + len(digits) - 1)
    adjusted = draw(st.integers(lowest, MAX_ADJUSTED_EXPONENT))
    exponent = adjusted - (len(digits) - 1)
    spelling = draw(st.sampled_from(["scientific", "coefficient", "positional", "python"]))
    if spelling == "scientific":
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        marker = draw(st.sampled_from(["E", "e", "E+"] if adjusted >= 0 else ["E", "e"]))
        return f"{sign}{mantissa}{marker}{adjusted}"
    if spelling == "coefficient":
        return f"{sign}{digits}E{exponent}"
    if spelling == "positional" and exponent <= 0:
        if exponent == 0:
            return sign + digits
        if len(digits) > -exponent:
            return f"{sign}{digits[:exponent]}.{digits[exponent:]}"
        return f"{sign}0.{'0' * (-exponent - len(digits))}{digits}"
    coefficient = tuple(int(digit) for digit in digits)
    return sign + str(Decimal((0, coefficient, exponent)))


attribute_names = st.text(min_size=1, max_size=12)

# Attribute values in the shape boto3 gives and takes: B and BS as bytes.
scalar_values = st.one_of(
    st.text().map(lambda text: {"S": text}),
    number_texts().map(lambda text: {"N": text}),
    st.binary(max_size=40).map(lambda data: {"B": data}),
    st.booleans().map(lambda flag: {"BOOL": flag}),
    st.just({"NULL": True}),
    st.lists(st.text(), min_size=1, max_size=5, unique=True).map(lambda texts: {"SS": texts}),
    st.lists(number_texts(), min_size=1, max_size=5, unique_by=Decimal).map(lambda texts: {"NS": texts}),
    st.lists(st.binary(max_size=20), min_size=1, max_size=5, unique=True).map(lambda data: {"BS": data}),
)
attribute_values = st.recursive(
    scalar_values,
    lambda members: st.one_of(
        st.dictionaries(attribute_names, members, max_size=4).map(lambda item: {"M": item}),
        st.lists(members, max_size=4).map(lambda values: {"L": values}),
    ),
    max_leaves=12,
)
images = st.dictionaries(attribute_names, attribute_values, min_size=1, max_size=6)


# --- helpers ---------------------------------------------------------------


def lambda_shape(value: Any) -> Any:
    """The same attribute value as Lambda's JSON carries it: binary as base64 text."""
    (tag, payload), *_ = value.items()
    if tag == "B":
        return {"B": base64.b64encode(payload).decode("ascii")}
    if tag == "BS":
        return {"BS": [base64.b64encode(member).decode("ascii") for member in payload]}
    if tag == "M":
        return {"M": {name: lambda_shape(member) for name, member in payload.items()}}
    if tag == "L":
        return {"L": [lambda_shape(member) for member in payload]}
    return value


def boto3_value(value: Any) -> Any:
    """Deserialize with boto3, turning its `Binary` wrappers into the bytes they hold."""
    return without_binary(BOTO3.deserialize(value))


def without_binary(value: Any) -> Any:
    if isinstance(value, Binary):
        return value.value  # type: ignore[attr-defined]  # missing from boto3-stubs
    if isinstance(value, dict):
        return {name: without_binary(member) for name, member in value.items()}
    if isinstance(value, list):
        return [without_binary(member) for member in value]
    if isinstance(value, set):
        return {without_binary(member) for member in value}
    return value


def exact(value: Any) -> Any:
    """
    A form that is equal only when type, digits and exponent are all the same.

    Equality alone is not enough: `Decimal("1.5") == Decimal("1.50")`, `True == Decimal(1)`.
    """
    kind = type(value)
    if kind is Decimal:
        return ("N", value.as_tuple())
    if kind is str:
        return ("S", value)
    if kind is bytes:
        return ("B", value)
    if kind is bool:
        return ("BOOL", value)
    if value is None:
        return ("NULL",)
    if kind is dict:
        return ("M", {name: exact(member) for name, member in value.items()})
    if kind is list:
        return ("L", [exact(member) for member in value])
    if kind is set:
        return ("set", frozenset(exact(member) for member in value))
    raise AssertionError(f"unexpected {kind.__name__} in a deserialized value")


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for member in value.values():
            yield from walk(member)
    elif isinstance(value, (list, set)):
        for member in value:
            yield from walk(member)


def invalid(image: Any) -> InvalidAttributeValue:
    with pytest.raises(InvalidAttributeValue) as raised:
        deserialize_image(image)
    return raised.value


# --- agreement with boto3 --------------------------------------------------


@settings(max_examples=250)
@given(attribute_values)
def test_value_in_boto3_shape_deserializes_as_boto3_does(value: Any) -> None:
    expected = boto3_value(value)

    actual = deserialize_value(value)

    assert expected == actual
    assert exact(expected) == exact(actual)


@settings(max_examples=250)
@given(attribute_values)
def test_value_in_lambda_json_shape_deserializes_as_boto3_does_its_bytes(value: Any) -> None:
    expected = boto3_value(value)

    actual = deserialize_value(lambda_shape(value))

    assert expected == actual
    assert exact(expected) == exact(actual)


@settings(max_examples=100)
@given(images)
def test_image_deserializes_as_boto3_does_each_attribute(image: dict[str, Any]) -> None:
    expected = {name: boto3_value(value) for name, value in image.items()}

    actual = deserialize_image({name: lambda_shape(value) for name, value in image.items()})

    assert expected == actual
    assert exact(expected) == exact(actual)


@settings(max_examples=100)
@given(images)
def test_image_read_from_lambda_json_text_deserializes_as_boto3_does(image: dict[str, Any]) -> None:
    text = json.dumps({name: lambda_shape(value) for name, value in image.items()})
    expected = {name: boto3_value(value) for name, value in image.items()}

    actual = deserialize_image(json.loads(text, parse_float=Decimal))

    assert expected == actual
    assert exact(expected) == exact(actual)


@settings(max_examples=100)
@given(images)
def test_deserialized_image_holds_no_float(image: dict[str, Any]) -> None:
    result = deserialize_image({name: lambda_shape(value) for name, value in image.items()})

    assert [] == [member for member in walk(result) if isinstance(member, float)]


@settings(max_examples=200)
@given(number_texts(smallest_exponent=MIN_ADJUSTED_EXPONENT - MAX_DIGITS + 1))
def test_number_keeps_every_digit_and_its_exponent(text: str) -> None:
    actual = deserialize_value({"N": text})

    assert Decimal is type(actual)
    assert Decimal(text).as_tuple() == actual.as_tuple()


# --- boundaries ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123456789012345678",
        "99999999999999999999999999999999999999",
        "-99999999999999999999999999999999999999",
        "1E-130",
        "-1E-130",
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "-0",
        "0",
        "1.500",
        "0.000",
        "1.50E+3",
        "100E-2",
    ],
)
def test_boundary_number_equals_boto3_and_keeps_its_exponent(text: str) -> None:
    expected = BOTO3.deserialize({"N": text})

    actual = deserialize_value({"N": text})

    assert expected == actual
    assert expected.as_tuple() == actual.as_tuple()
    assert Decimal(text).as_tuple() == actual.as_tuple()


def test_minus_zero_keeps_its_sign() -> None:
    assert 1 == deserialize_value({"N": "-0"}).as_tuple().sign


def test_38_digit_number_near_the_smallest_magnitude_is_exact() -> None:
    # boto3 raises decimal.Underflow here (its context's Emin is -128);
    # DynamoDB stores it and dynastream keeps it.
    text = "1.0000000000000000000000000000000000001E-130"

    actual = deserialize_value({"N": text})

    assert Decimal(text).as_tuple() == actual.as_tuple()


def test_binary_from_lambda_json_is_decoded_exactly_once() -> None:
    # The raw bytes are themselves valid base64 text: decoding twice would give b"ABC".
    raw = base64.b64encode(b"ABC")

    from_lambda = deserialize_value({"B": base64.b64encode(raw).decode("ascii")})
    from_boto3 = deserialize_value({"B": raw})

    assert raw == from_lambda
    assert raw == from_boto3


def test_binary_set_from_lambda_json_is_a_set_of_bytes() -> None:
    actual = deserialize_value({"BS": ["AA==", "/w==", ""]})

    assert {b"\x00", b"\xff", b""} == actual
    assert {bytes} == {type(member) for member in actual}


def test_empty_image_is_an_empty_item() -> None:
    assert {} == deserialize_image({})


# --- errors ----------------------------------------------------------------

N_NOT_TEXT = "'N' value must be a string of digits, got number"
NOT_A_NUMBER = "'N' value is not a decimal number"
NOT_AN_OBJECT = "attribute value must be an object with one type tag, got "


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param({"N": 20}, N_NOT_TEXT, id="N-as-json-number"),
        pytest.param({"N": Decimal("20")}, N_NOT_TEXT, id="N-as-decimal"),
        pytest.param({}, "attribute value has no type tag", id="no-tag"),
        pytest.param({"S": "a", "N": "1"}, "exactly one type tag, found 2: 'S', 'N'", id="two-tags"),
        pytest.param({"X": "1"}, "unknown type tag 'X'", id="unknown-tag"),
        pytest.param({"s": "a"}, "unknown type tag 's'", id="lower-case-tag"),
        pytest.param("a", NOT_AN_OBJECT + "string", id="bare-string"),
        pytest.param(None, NOT_AN_OBJECT + "null", id="null"),
        pytest.param({"N": "NaN"}, NOT_A_NUMBER, id="N-NaN"),
        pytest.param({"N": "Infinity"}, NOT_A_NUMBER, id="N-Infinity"),
        pytest.param({"N": "-inf"}, NOT_A_NUMBER, id="N-minus-inf"),
        pytest.param({"N": "1_000"}, NOT_A_NUMBER, id="N-underscore"),
        pytest.param({"N": " 1"}, NOT_A_NUMBER, id="N-leading-space"),
        pytest.param({"N": "1\n"}, NOT_A_NUMBER, id="N-trailing-newline"),
        pytest.param({"N": ""}, NOT_A_NUMBER, id="N-empty"),
        pytest.param({"N": "0x10"}, NOT_A_NUMBER, id="N-hex"),
        pytest.param({"N": "1e"}, NOT_A_NUMBER, id="N-bare-exponent"),
        pytest.param({"N": "\u0661\u0662"}, NOT_A_NUMBER, id="N-arabic-indic-digits"),
        pytest.param({"S": 1}, "'S' value must be a string, got number", id="S-number"),
        pytest.param({"B": "not base64!"}, "'B' value is not valid base64", id="B-not-base64"),
        pytest.param({"B": "AAA"}, "'B' value is not valid base64", id="B-bad-padding"),
        pytest.param({"B": 5}, "'B' value must be base64 text or bytes, got number", id="B-number"),
        pytest.param({"BOOL": "true"}, "'BOOL' value must be true or false, got string", id="BOOL-string"),
        pytest.param({"BOOL": 1}, "'BOOL' value must be true or false, got number", id="BOOL-number"),
        pytest.param({"NULL": False}, "'NULL' value must be true", id="NULL-false"),
        pytest.param({"NULL": "true"}, "'NULL' value must be true", id="NULL-string"),
        pytest.param({"SS": "a"}, "'SS' value must be an array, got string", id="SS-not-list"),
        pytest.param({"NS": "1"}, "'NS' value must be an array, got string", id="NS-not-list"),
        pytest.param({"BS": {}}, "'BS' value must be an array, got object", id="BS-not-list"),
        pytest.param({"M": []}, "'M' value must be an object, got array", id="M-array"),
        pytest.param({"L": {}}, "'L' value must be an array, got object", id="L-object"),
    ],
)
def test_malformed_value_is_reported_at_its_attribute(value: Any, reason: str) -> None:
    error = invalid({"id": {"S": "o-1"}, "price": value})

    assert f"{PREFIX}.price" == error.field(PREFIX)
    assert reason in error.reason


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        pytest.param({"SS": ["a", 1]}, "[1]", "'SS' member: must be a string, got number", id="SS"),
        pytest.param({"NS": ["1", "2", "x"]}, "[2]", "'NS' member: " + NOT_A_NUMBER, id="NS"),
        pytest.param({"NS": ["1", 2]}, "[1]", "'NS' member: 'N' value must be a string", id="NS-number"),
        pytest.param({"BS": ["AA==", "!!"]}, "[1]", "'BS' member: 'B' value is not valid base64", id="BS"),
    ],
)
def test_malformed_set_member_is_reported_by_position(value: Any, path: str, reason: str) -> None:
    error = invalid({"tags": value})

    assert f"{PREFIX}.tags{path}" == error.field(PREFIX)
    assert reason in error.reason


EMPTY_SET = "value is an empty set (a DynamoDB set has at least one member)"
REPEATED = "member: repeats an earlier member (set members are unique)"
# DynamoDB refuses to store an empty set or a set with a member twice
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
MALFORMED_SETS = [
    pytest.param({"SS": []}, "", "'SS' " + EMPTY_SET, id="SS-empty"),
    pytest.param({"NS": []}, "", "'NS' " + EMPTY_SET, id="NS-empty"),
    pytest.param({"BS": []}, "", "'BS' " + EMPTY_SET, id="BS-empty"),
    pytest.param({"SS": ["a", "b", "a"]}, "[2]", "'SS' " + REPEATED, id="SS-repeated"),
    pytest.param({"NS": ["1.5", "2", "1.50"]}, "[2]", "'NS' " + REPEATED, id="NS-equal-numbers"),
    pytest.param({"NS": ["0", "-0"]}, "[1]", "'NS' " + REPEATED, id="NS-minus-zero"),
    pytest.param({"BS": ["AAE=", "AAE="]}, "[1]", "'BS' " + REPEATED, id="BS-repeated"),
    pytest.param({"BS": [b"\x00\x01", "AAE="]}, "[1]", "'BS' " + REPEATED, id="BS-bytes-and-base64"),
]


@pytest.mark.parametrize(("value", "path", "reason"), MALFORMED_SETS)
def test_empty_set_or_repeated_set_member_is_malformed(value: Any, path: str, reason: str) -> None:
    error = invalid({"id": {"S": "o-1"}, "tags": value})

    assert (f"{PREFIX}.tags{path}", reason) == (error.field(PREFIX), error.reason)


@pytest.mark.parametrize(
    "value", [case.values[0] for case in MALFORMED_SETS], ids=[str(case.id) for case in MALFORMED_SETS]
)
@pytest.mark.parametrize("where", ["top", "nested"])
def test_empty_set_or_repeated_set_member_is_refused_by_the_fast_path(value: Any, where: str) -> None:
    from dynastream._deserialize import _fast_map

    image = {"id": {"S": "o-1"}, "tags": value}
    if where == "nested":
        image = {"id": {"S": "o-1"}, "rows": {"L": [{"M": {"tags": value}}]}}

    with pytest.raises(InvalidAttributeValue):
        _fast_map(image)


# A str that holds a lone surrogate (JSON's "\ud800" gives one) cannot be UTF-8, as every
# DynamoDB string is: refused wherever it is, never quoted.
LONE_SURROGATE = "not valid Unicode: a lone surrogate"
UNENCODABLE = [
    pytest.param({"email": {"S": CANARY + "\ud800"}}, ".email", LONE_SURROGATE, id="S"),
    pytest.param({"email": {"S": "é" + CANARY + "\udfff"}}, ".email", LONE_SURROGATE, id="S-not-ascii"),
    pytest.param({"email": {"S": CANARY + "\ud83d\ude00"}}, ".email", LONE_SURROGATE, id="S-two-halves"),
    pytest.param(
        {"tags": {"SS": ["a", CANARY + "\udc00"]}}, ".tags[1]", "'SS' member: " + LONE_SURROGATE, id="SS"
    ),
    pytest.param(
        {"lines": {"L": [{"S": "a"}, {"S": CANARY + "\ud800"}]}}, ".lines[1]", LONE_SURROGATE, id="L"
    ),
    pytest.param({"a\ud800": {"S": "x"}}, "['a\\ud800']", LONE_SURROGATE, id="name"),
    pytest.param(
        {"doc": {"M": {"x": {"L": [{"M": {"b\udc00": {"N": "1"}}}]}}}},
        ".doc.#1[0].#1",  # members of maps by position: their names may be data
        LONE_SURROGATE,
        id="name-deep",
    ),
    pytest.param({"doc": {"M": {"x": {"S": CANARY + "\ud800"}}}}, ".doc.#1", LONE_SURROGATE, id="S-in-M"),
]


@pytest.mark.parametrize(("image", "path", "reason"), UNENCODABLE)
def test_lone_surrogate_is_malformed_at_its_path_and_never_quoted(image: Any, path: str, reason: str) -> None:
    error = invalid({"id": {"S": "o-1"}, **image})

    assert (PREFIX + path, reason) == (error.field(PREFIX), error.reason)
    assert CANARY not in error.field(PREFIX) + error.reason
    error.field(PREFIX).encode()  # the path itself is valid text


@pytest.mark.parametrize(
    "image", [case.values[0] for case in UNENCODABLE], ids=[str(case.id) for case in UNENCODABLE]
)
def test_lone_surrogate_is_refused_by_the_fast_path(image: Any) -> None:
    from dynastream._deserialize import FAST_DECODERS, _fast_map

    for decode, value in [
        (_fast_map, image),
        (FAST_DECODERS["M"], image),
        (FAST_DECODERS["L"], [{"M": image}]),
    ]:
        with pytest.raises(InvalidAttributeValue):
            decode(value)


@pytest.mark.parametrize("text", ["\ud800", "a\udfff"])
def test_lone_surrogate_in_a_list_of_strings_is_refused_by_the_fast_decoder_of_s(text: str) -> None:
    from dynastream._deserialize import FAST_DECODERS

    with pytest.raises(InvalidAttributeValue):
        FAST_DECODERS["S"](text)


def test_text_that_is_valid_unicode_is_kept_as_it_is() -> None:
    image = {"a": {"S": "Zürich 😀 \u2028"}, "é😀": {"SS": ["ß", "\U0010ffff"]}, "l": {"L": [{"S": "日本"}]}}

    assert {"a": "Zürich 😀 \u2028", "é😀": {"ß", "\U0010ffff"}, "l": ["日本"]} == deserialize_image(image)


def test_malformed_value_deep_inside_map_list_map_is_reported_by_full_path() -> None:
    image = {
        "id": {"S": "o-1"},
        "a": {
            "M": {
                "x": {"N": "1"},
                "b": {"L": [{"S": "first"}, {"N": "2"}, {"M": {"ok": {"BOOL": True}, "c": {"N": 20}}}]},
            }
        },
    }

    error = invalid(image)

    assert "dynamodb.NewImage.a.#2[2].#2" == error.field(PREFIX)
    assert "'N' value must be a string of digits, got number" in error.reason


def test_malformed_set_member_inside_a_list_is_reported_by_both_positions() -> None:
    error = invalid({"rows": {"L": [{"NS": ["1"]}, {"NS": ["1", "one"]}]}})

    assert "dynamodb.NewImage.rows[1][1]" == error.field(PREFIX)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        pytest.param("first name", "['first name']", id="space"),
        pytest.param("a.b", "['a.b']", id="dot"),
        pytest.param("1st", "['1st']", id="leading-digit"),
        pytest.param("it's", '["it\'s"]', id="quote"),
        pytest.param("", "['']", id="empty"),
        pytest.param("order-id", ".order-id", id="hyphen"),
        pytest.param("_private2", "._private2", id="identifier"),
    ],
)
def test_attribute_name_is_quoted_in_the_path_and_map_members_are_numbered(name: str, label: str) -> None:
    error = invalid({name: {"M": {"x y": {"N": 20}}}})

    assert f"{PREFIX}{label}.#1" == error.field(PREFIX)


def test_malformed_top_level_value_has_an_empty_path() -> None:
    with pytest.raises(InvalidAttributeValue) as raised:
        deserialize_value({"N": 20})

    assert "dynamodb.NewImage.price" == raised.value.field("dynamodb.NewImage.price")


@pytest.mark.parametrize("image", [[], "x", None, 1], ids=["array", "string", "null", "number"])
def test_image_that_is_not_an_object_is_reported_at_the_image(image: Any) -> None:
    error = invalid(image)

    assert PREFIX == error.field(PREFIX)
    assert error.reason.startswith("image must be an object, got ")


def test_first_malformed_attribute_is_the_one_reported() -> None:
    error = invalid({"a": {"S": "ok"}, "b": {"N": "x"}, "c": {"N": 1}})

    assert f"{PREFIX}.b" == error.field(PREFIX)


# A malformed value placed anywhere in a tree of valid maps and lists is
# reported at exactly the path where it was placed.

# Each with the path below it where it is reported.
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"N": 20}, ""),
    ({}, ""),
    ({"S": "a", "N": "1"}, ""),
    ({"B": "%%"}, ""),
    ({"NULL": False}, ""),
    ({"SS": ["a", None]}, "[1]"),
    ({"SS": []}, ""),
    ({"NS": ["1.5", "1.50"]}, "[1]"),
    ({"BS": ["AAE=", "AAE="]}, "[1]"),
    ({"S": "x\ud800"}, ""),
    ({"SS": ["a", "\udfff"]}, "[1]"),
    ({"L": [{"S": "ok"}, {"S": "\udc00"}]}, "[1]"),
    ({"M": {"\ud800": {"S": "ok"}}}, ".#1"),
]
valid_values = st.recursive(
    st.one_of(st.text(max_size=5).map(lambda text: {"S": text}), st.just({"N": "1.50"})),
    lambda members: st.one_of(
        st.dictionaries(attribute_names, members, max_size=2).map(lambda item: {"M": item}),
        st.lists(members, max_size=2).map(lambda values: {"L": values}),
    ),
    max_leaves=4,
)


def label(name: str) -> str:
    is_identifier = name[:1] in string.ascii_letters + "_" and all(
        character in string.ascii_letters + string.digits + "_-" for character in name
    )
    return "." + name if is_identifier else f"[{name!r}]"


@st.composite
def images_with_one_malformed_value(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    bad, path = draw(st.sampled_from(BAD_VALUES))
    value: Any = dict(bad)
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            name = draw(attribute_names)
            siblings = draw(st.dictionaries(attribute_names, valid_values, max_size=2))
            siblings.pop(name, None)
            value = {"M": {**siblings, name: value}}
            path = f".#{len(siblings) + 1}" + path  # a member by its position: its name may be data
        else:
            before = draw(st.lists(valid_values, max_size=3))
            after = draw(st.lists(valid_values, max_size=2))
            value = {"L": [*before, value, *after]}
            path = f"[{len(before)}]" + path
    name = draw(attribute_names)
    siblings = draw(st.dictionaries(attribute_names, valid_values, max_size=3))
    siblings.pop(name, None)
    return {**siblings, name: value}, PREFIX + label(name) + path


@settings(max_examples=150)
@given(images_with_one_malformed_value())
def test_malformed_value_anywhere_is_reported_at_its_path(case: tuple[dict[str, Any], str]) -> None:
    image, expected = case

    assert expected == invalid(image).field(PREFIX)


@pytest.mark.parametrize(
    "value",
    [
        {"N": CANARY},
        {"B": CANARY},
        {"BOOL": CANARY},
        {"NULL": CANARY},
        {"S": CANARY, "N": "1"},
        {"SS": CANARY},
        {"NS": ["1", CANARY]},
        {"M": {"email": {"S": CANARY}, "n": {"N": 20}}},
        {"L": [{"S": CANARY}, {"N": CANARY}]},
    ],
    ids=["N", "B", "BOOL", "NULL", "two-tags", "SS", "NS", "M-sibling", "L"],
)
def test_error_never_quotes_an_attribute_value(value: Any) -> None:
    error = invalid({"email": {"S": CANARY}, "value": value})

    assert CANARY not in str(error)
    assert CANARY not in repr(error)
    assert CANARY not in error.reason
    assert CANARY not in error.field(PREFIX)


# The fast path must accept nothing the checked path refuses, and agree with it.

# Lone surrogates (and a pair, which in a Python str is two of them: only JSON joins them).
_unencodable = st.sampled_from(["\ud800", "a\udfff", "\xe9\udc00x", "\ud83d\ude00"])
_loose_names = st.one_of(st.text(max_size=3), _unencodable)
_payloads = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    _unencodable,
    st.sampled_from(
        ["1", "1.50", "1.5", "-0", "0", "1e5", " 1", "1_0", "NaN", "Infinity", "\u0661", "", "AAEC", "1 "]
    ),
    st.binary(max_size=4),
)
_tags = st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X"])
_loose_values = st.recursive(
    st.dictionaries(_tags, _payloads, max_size=2),
    lambda children: st.one_of(
        st.dictionaries(_tags, st.dictionaries(_loose_names, children, max_size=3), max_size=2),
        st.dictionaries(_tags, st.lists(children, max_size=3), max_size=2),
        st.dictionaries(_tags, st.lists(_payloads, max_size=3), max_size=2),
    ),
    max_leaves=8,
)


@settings(max_examples=500)
@given(st.dictionaries(_loose_names, _loose_values, max_size=4))
def test_fast_path_accepts_only_what_the_checked_path_accepts(image: dict[str, Any]) -> None:
    from dynastream._deserialize import _checked_image, _fast_map

    try:
        fast = _fast_map(image)
    except Exception:
        return
    assert _checked_image(image) == fast


@settings(max_examples=1000)
@given(
    st.text(
        alphabet=st.sampled_from("019.eE+-_ \t\n\r\x00\x01\x0b\x0c\x1c\x1f\xa0\u0661\u3000NaInfity"),
        max_size=7,
    )
)
def test_fast_number_accepts_only_what_the_checked_path_accepts(text: str) -> None:
    """Ends with white space or control characters included: Decimal() strips some of them."""
    from dynastream._deserialize import fast_number

    try:
        fast = fast_number(text)
    except Exception:  # the fast path may refuse by any exception
        return
    checked = deserialize_value({"N": text})
    assert (Decimal, checked.as_tuple()) == (type(fast), fast.as_tuple())


def test_a_value_without_tag_next_to_one_with_two_is_refused() -> None:
    """Two wrongs must not add up to a right: the tags are counted per value."""
    with pytest.raises(InvalidAttributeValue) as raised:
        deserialize_image({"a": {}, "b": {"L": [], "SS": []}})

    assert "dynamodb.NewImage.a" == raised.value.field("dynamodb.NewImage")
