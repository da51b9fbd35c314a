"""Hypothesis strategies for bad input, and how a lenient server reads a path.

"Leaves the base URL" is judged as a lenient server would read the path: percent-decoded as
often as it decodes, backslashes taken for slashes, ``;parameters`` dropped from segments
(as Tomcat does with ``..;``), then ``.`` and ``..`` segments resolved.
"""

from urllib.parse import unquote, urlsplit

from hypothesis import strategies as st

# Pieces that paths escape with, percent-encoded once, twice or not at all, mixed with text.
TRICKY = [
    ".", "..", "/", "//", "\\", "%2e", "%2E", "%2e%2e", ".%2e", "%2e.", "%252e", "%252e%252e",
    "%25252e", "%2f", "%2F", "%252f", "%5c", "%5C", "%255c", ";", "..;", ";x=1", "%3b",
    "?", "#", "%23", "%3f", ":", "@", "http:", "https://evil.example", "//evil.example",
    "evil.example", "%00", "%0d%0a", "\r\n", "\t", " ", "%20", "~", "é", "%C3%A9", "%", "%zz",
    "\u3000", "\x85", "items", "a", "1",
]  # fmt: skip
paths = st.one_of(
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=10).map("".join),
    st.text(max_size=40),
)
header_text = st.lists(
    st.characters(codec="utf-8") | st.sampled_from(["\r", "\n", "\r\n", "\x00", ":", " "]),
    max_size=20,
).map("".join)

request_headers = st.one_of(
    st.just({}),
    st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True), header_text, max_size=3
    ),
    st.dictionaries(header_text, header_text, max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(st.characters()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def as_a_lenient_server_reads(path: str) -> str:
    route = path.split("?", 1)[0]
    for _ in range(10):
        decoded = unquote(route)
        if decoded == route:
            break
        route = decoded
    route = route.replace("\\", "/")
    resolved: list[str] = []
    for segment in route.split("/"):
        segment = segment.split(";", 1)[0]
        if segment == "..":
            if len(resolved) > 1:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    return "/".join(resolved)


def stays_under(base_url: str, url: str) -> bool:
    base, final = urlsplit(base_url), urlsplit(url)
    return (final.scheme, final.netloc) == (base.scheme, base.netloc) and (
        as_a_lenient_server_reads(final.path) + "/"
    ).startswith(base.path)
