"""The console page, the login and logout pages, the CSP, and CSRF failures on pages."""

import json
import re
from html.parser import HTMLParser

import pytest

from .conftest import PASSWORD


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(response) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(response.content.decode())
    return parser.tags


def test_console_needs_a_login(anonymous):
    response = anonymous.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_console_page_carries_its_settings_and_the_token_status(console, settings):
    settings.POC_API = {**settings.POC_API, "BASE_URL": "https://api.example/v2", "BATCH_MAX": 77}

    response = console.get("/")

    assert response.status_code == 200
    page = response.context["page"]
    assert page["base_url"] == "https://api.example/v2/"
    assert (page["batch_max"], page["max_workers"]) == (77, 16)
    assert page["token"]["state"] == "missing"
    assert page["urls"]["exchange_admin"] == "/admin/api_client/exchange/{id}/change/"
    embedded = re.search(
        r'<script id="page-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert json.loads(embedded.group(1)) == json.loads(json.dumps(page))


def test_pages_allow_no_inline_script_or_style(console):
    response = console.get("/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    tags = tags_of(response)
    for tag, attrs in tags:
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
        assert "style" not in attrs, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    sources = [attrs.get("src") or attrs.get("href") or "" for _, attrs in tags]
    assert not any(source.startswith(("http:", "https:", "//")) for source in sources)


def test_login_page_is_the_consoles_own(anonymous):
    response = anonymous.get("/accounts/login/?next=/")

    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == [
        "registration/login.html",
        "pocclient/base.html",
    ]
    assert "Content-Security-Policy" in response


def test_logging_in_opens_the_console(user, anonymous):
    anonymous.get("/accounts/login/")
    response = anonymous.post(
        "/accounts/login/",
        {
            "username": "engineer",
            "password": PASSWORD,
            "next": "/",
            "csrfmiddlewaretoken": anonymous.csrf_token(),
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert anonymous.get("/").status_code == 200


def test_a_wrong_password_shows_the_form_again(user, anonymous):
    response = anonymous.post(
        "/accounts/login/",
        {"username": "engineer", "password": "nope", "csrfmiddlewaretoken": anonymous.csrf_token()},
    )

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logging_out_goes_back_to_the_login_page(console):
    response = console.post("/accounts/logout/", {"csrfmiddlewaretoken": console.csrf_token()})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert b"You are logged out." in console.get("/accounts/login/").content
    assert console.get("/api/token").status_code == 401


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/logout/"])
def test_csrf_failure_on_a_page_is_djangos_html_page(anonymous, path):
    response = anonymous.post(path, {"username": "x", "password": "y"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
