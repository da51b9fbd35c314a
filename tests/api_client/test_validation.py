"""Input checks: what is refused, and what is accepted, before anything is sent."""

import pytest

from api_client.exceptions import InvalidRequestError
from api_client.validation import (
    clean_headers,
    clean_method,
    clean_query,
    confine_path,
    encode_json,
)

BASE = "http://api.example/v1/"


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("items", "http://api.example/v1/items"),
        ("/items", "http://api.example/v1/items"),
        ("items/1?x=1", "http://api.example/v1/items/1?x=1"),
        ("", "http://api.example/v1/"),
        ("a%20b", "http://api.example/v1/a%20b"),
        ("files/..data", "http://api.example/v1/files/..data"),
        ("items;v=2/1", "http://api.example/v1/items;v=2/1"),
        ("caf%C3%A9/%23tag", "http://api.example/v1/caf%C3%A9/%23tag"),
    ],
)
def test_paths_under_the_base_url_are_accepted(path, url):
    assert confine_path(BASE, path)[0] == url


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/",
        "HTTP://api.example/v1/x",
        "//evil.example/",
        "mailto:someone",
        "..",
        "../v2/items",
        "items/../../admin",
        "./items",
        "%2e%2e/admin",
        "%2E%2e%2fadmin",
        "%252e%252e/admin",
        "items%2f..%2f..%2fadmin",
        "items\\..",
        "items/%5C..",
        "items#frag",
        "items with space",
        "items\r\nHost: evil",
        "items/%00",
        "..;/admin",
        "items/..;jsessionid=x/..;/admin",
        "%25252525252e%25252525252e/admin",
        "http://evil.example[",
        "x" * 2049,
        None,
        42,
    ],
)
def test_paths_leaving_the_base_url_are_refused(path):
    with pytest.raises(InvalidRequestError) as caught:
        confine_path(BASE, path)

    assert caught.value.field == "path"


def test_methods_are_normalised_and_unknown_ones_refused():
    assert clean_method(" patch ") == "PATCH"
    with pytest.raises(InvalidRequestError, match="Unknown method 'TRACE'"):
        clean_method("TRACE")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "x"}, "managed by pocclient"),
        ({"host": "x"}, "managed by pocclient"),
        ({"X-A": "a\nb"}, "line break"),
        ({"X A": "1"}, "not a valid header name"),
        ({"X-A": 1}, "must be a string"),
        ({f"X-{n}": "1" for n in range(51)}, "Too many headers"),
        ({"X-A": "v" * 8193}, "longer than"),
        ({"X-A": "€"}, "cannot carry"),
        (["X-A"], "object of names"),
    ],
)
def test_bad_headers_are_refused_with_a_reason(headers, message):
    with pytest.raises(InvalidRequestError, match=message):
        clean_headers(headers)


def test_query_accepts_strings_numbers_and_lists():
    assert clean_query({"a": "1", "b": [2, "3"], "c": 1.5}) == [
        ("a", "1"),
        ("b", "2"),
        ("b", "3"),
        ("c", "1.5"),
    ]
    with pytest.raises(InvalidRequestError):
        clean_query({"a": True})


def test_json_body_is_limited_in_depth():
    deep: list = []
    for _ in range(2000):
        deep = [deep]

    assert encode_json([[[1]]], max_bytes=100) == b"[[[1]]]"
    with pytest.raises(InvalidRequestError, match="nested more than 100 levels"):
        encode_json(deep, max_bytes=10_000)


def test_json_body_is_limited_in_size():
    assert encode_json({"a": "é"}, max_bytes=100) == '{"a": "é"}'.encode()
    with pytest.raises(InvalidRequestError, match="the limit is 10"):
        encode_json({"a": "x" * 20}, max_bytes=10)
