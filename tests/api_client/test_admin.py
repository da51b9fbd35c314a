"""The exchange admin: list, filters, search, detail, and what it refuses."""

from urllib.parse import urlencode

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.urls import reverse

from api_client.models import Exchange
from tests.helpers.exchanges import ago, create_exchange, make_exchange

pytestmark = pytest.mark.django_db

LIST = reverse("admin:api_client_exchange_changelist")


def detail(exchange: Exchange) -> str:
    return reverse("admin:api_client_exchange_change", args=[exchange.pk])


def listed(admin_client, query: str = "") -> set[str]:
    """The paths of the exchanges the list shows for ``query``."""
    response = admin_client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    return {row.path for row in response.context["cl"].result_list}


@pytest.fixture
def variety() -> dict[str, Exchange]:
    return {
        "ok": create_exchange(path="/ok", status=200, request_id="req-a", batch_id="b1"),
        "redirect": create_exchange(path="/moved", status=302, request_id="req-a"),
        "missing": create_exchange(path="/missing", method="DELETE", status=404),
        "broken": create_exchange(path="/broken", method="POST", status=503, batch_id="b1"),
        "timeout": create_exchange(
            path="/slow", status=None, error_code="timeout", error="No answer.", duration_ms=5000
        ),
        "token": create_exchange(path="/oauth/token", kind=Exchange.Kind.TOKEN, method="POST"),
        "old": create_exchange(path="/old", created_at=ago(days=40)),
    }


def test_the_list_shows_every_exchange_newest_first(admin_client, variety):
    response = admin_client.get(LIST)

    rows = list(response.context["cl"].result_list)
    assert [r.path for r in rows][:2] == ["/oauth/token", "/slow"]
    assert rows[-1].path == "/old"
    content = response.content.decode()
    assert f'href="{LIST}?request_id=req-a"' in content
    assert f'href="{LIST}?batch_id=b1"' in content
    assert "5000.0 ms" in content


def test_the_list_does_not_load_bodies(admin_client, variety):
    rows = admin_client.get(LIST).context["cl"].result_list

    assert {"request_body", "response_body"} <= rows[0].get_deferred_fields()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status_class=2", {"/ok", "/oauth/token", "/old"}),
        ("status_class=3", {"/moved"}),
        ("status_class=4", {"/missing"}),
        ("status_class=5", {"/broken"}),
        ("status_class=0", {"/slow"}),
        ("error=yes", {"/missing", "/broken", "/slow"}),
        ("error=no", {"/ok", "/moved", "/oauth/token", "/old"}),
        ("method=DELETE", {"/missing"}),
        ("method=POST", {"/broken", "/oauth/token"}),
        ("kind__exact=token", {"/oauth/token"}),
        ("request_id=req-a", {"/ok", "/moved"}),
        ("batch_id=b1", {"/ok", "/broken"}),
        ("batch_id=+b1+", {"/ok", "/broken"}),
        ("request_id=req", set()),
        ("error=yes&method=POST", {"/broken"}),
        ("q=miss", {"/missing"}),
        ("q=req-a", {"/ok", "/moved"}),
        ("q=req", set()),  # request ids match exactly, paths by any part
        (
            urlencode({"created_at__gte": ago(days=7).isoformat()}),
            {"/ok", "/moved", "/missing", "/broken", "/slow", "/oauth/token"},
        ),
    ],
)
def test_filters_and_search_select_the_right_exchanges(admin_client, variety, query, expected):
    assert listed(admin_client, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "o=99",
        "o=x",
        "request_id=",
        "status_class=",
        "p=x",
        "p=99",  # a single page: any page number shows it
    ],
)
def test_unknown_sort_and_page_values_and_empty_filters_are_ignored(admin_client, variety, query):
    assert len(listed(admin_client, query)) == len(variety)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "status_class=4xx",
            "The status class filter has no value '4xx' (status_class=4xx), so no exchanges "
            "are shown. Use status_class= one of: 2 (2xx), 3 (3xx), 4 (4xx), 5 (5xx), "
            '0 (no response); or pick "All" under "By status class".',
        ),
        ("status_class=9", "Use status_class= one of: 2 (2xx), 3 (3xx)"),
        (
            "error=maybe",
            "The error filter has no value 'maybe' (error=maybe), so no exchanges are shown. "
            "Use error= one of: yes (Failed (400 or more, or no response)), no (Succeeded)",
        ),
        ("method=FETCH", "Use method= one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS;"),
        ("method=get", "The method filter has no value 'get'"),
    ],
)
def test_an_invalid_filter_value_shows_an_error_naming_the_values_and_no_exchanges(
    admin_client, variety, query, expected
):
    response = admin_client.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    [message] = get_messages(response.wsgi_request)
    assert message.level == messages.ERROR
    assert expected in str(message)
    assert "0 exchanges" in response.content.decode()


def test_two_invalid_filters_get_one_message_each(admin_client, variety):
    response = admin_client.get(f"{LIST}?status_class=4xx&method=FETCH")

    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(shown) == 2
    assert shown[0].startswith("The status class filter") and shown[1].startswith("The method")


@pytest.mark.parametrize(
    "query",
    [
        "created_at__year=abc",
        "created_at__year=2026&created_at__month=13",
        "created_at__gte=yesterday",
        "no_such_field=1",
    ],
)
def test_bad_lookups_redirect_to_the_error_flag_rather_than_fail(admin_client, variety, query):
    response = admin_client.get(f"{LIST}?{query}")

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_a_page_past_the_end_redirects_to_the_error_flag(admin_client):
    Exchange.objects.bulk_create([make_exchange() for _ in range(60)])

    assert admin_client.get(f"{LIST}?p=2").status_code == 200
    response = admin_client.get(f"{LIST}?p=3")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_a_typed_id_is_escaped_back_into_its_box(admin_client, variety):
    response = admin_client.get(f"{LIST}?request_id=%3Cscript%3Ex")

    content = response.content.decode()
    assert 'value="&lt;script&gt;x"' in content
    assert "<script>x" not in content


def test_the_filter_boxes_keep_the_other_filters(admin_client, variety):
    content = admin_client.get(f"{LIST}?status_class=5&q=bro").content.decode()

    assert '<input type="hidden" name="status_class" value="5">' in content
    assert '<input type="hidden" name="q" value="bro">' in content


def test_sorting_by_duration(admin_client, variety):
    # Column 0 holds the action checkboxes; "duration" is column 7 (after "state").
    slowest_first = admin_client.get(f"{LIST}?o=-7").context["cl"].result_list

    assert slowest_first[0].path == "/slow"


def test_the_date_hierarchy_drills_down_to_days(admin_client, variety):
    today = ago()
    month = admin_client.get(
        f"{LIST}?created_at__year={today.year}&created_at__month={today.month}"
    )

    content = month.content.decode()
    assert f"created_at__day={today.day}" in content
    assert month.context["cl"].result_count == 6


def test_the_changelist_links_to_the_summary(admin_client):
    content = admin_client.get(LIST).content.decode()

    assert reverse("admin:api_client_exchangesummary_changelist") in content


def test_detail_shows_pretty_escaped_bodies_and_redacted_headers(admin_client):
    exchange = create_exchange(
        method="POST",
        request_headers={"Authorization": "Bearer [redacted]", "X-Trace": "t"},
        request_body='{"name":"w","tags":["a","b"]}',
        response_body='{"html":"<script>alert(1)</script>"}',
        request_id="req-z",
        batch_id="batch-9",
    )

    response = admin_client.get(detail(exchange))

    content = response.content.decode()
    assert response.status_code == 200
    assert "{\n  &quot;name&quot;: &quot;w&quot;,\n  &quot;tags&quot;: [\n" in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<script>alert(1)" not in content
    assert "Bearer [redacted]" in content
    assert f'href="{LIST}?request_id=req-z"' in content and ">req-z</a>" in content
    assert f'href="{LIST}?batch_id=batch-9"' in content


def test_detail_shows_a_body_that_is_not_json_as_it_is(admin_client):
    exchange = create_exchange(response_body="plain <b>text</b>", response_truncated=True)

    content = admin_client.get(detail(exchange)).content.decode()

    assert "<pre>plain &lt;b&gt;text&lt;/b&gt;</pre>" in content


def test_exchanges_are_read_only(admin_client):
    exchange = create_exchange(path="/ok")

    assert admin_client.get(reverse("admin:api_client_exchange_add")).status_code == 403
    response = admin_client.post(detail(exchange), {"path": "/changed"})
    assert response.status_code == 403
    assert Exchange.objects.get().path == "/ok"
    delete = reverse("admin:api_client_exchange_delete", args=[exchange.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse("admin:api_client_exchange_changelist"))
    assert "delete_selected" not in changelist.content.decode()  # purge_exchanges does that
    assert Exchange.objects.count() == 1


def test_a_missing_exchange_redirects_with_a_message(admin_client):
    response = admin_client.get(reverse("admin:api_client_exchange_change", args=[999999]))

    assert response.status_code == 302


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
