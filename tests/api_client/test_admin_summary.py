"""The summary page: figures for the last hour and day, charts, and who may see it."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from api_client.models import Exchange
from tests.helpers.exchanges import ago, make_exchange, record_finished

pytestmark = pytest.mark.django_db

SUMMARY = reverse("admin:api_client_exchangesummary_changelist")


@pytest.fixture
def recent_calls() -> None:
    rows = [make_exchange(created_at=ago(minutes=10), duration_ms=float(ms)) for ms in range(1, 21)]
    rows += [
        make_exchange(created_at=ago(minutes=20), status=404, duration_ms=100.0),
        make_exchange(created_at=ago(minutes=30), status=503, duration_ms=200.0),
        make_exchange(created_at=ago(minutes=40), status=None, error_code="timeout"),
        make_exchange(created_at=ago(minutes=50), status=302, duration_ms=3.0),
        make_exchange(created_at=ago(hours=5), status=500, duration_ms=1000.0),
        make_exchange(created_at=ago(hours=5), kind=Exchange.Kind.TOKEN, method="POST"),
        make_exchange(created_at=ago(days=2), status=500),  # outside both windows
    ]
    record_finished(rows)


def test_figures_for_the_last_hour_and_day(admin_client, recent_calls):
    response = admin_client.get(SUMMARY)

    assert response.status_code == 200
    hour, day = response.context["windows"]
    assert (hour.label, hour.total, hour.failed, hour.token_requests) == ("last hour", 24, 3, 0)
    assert {name: n for name, _, n in hour.by_class} == {
        "2xx": 20,
        "3xx": 1,
        "4xx": 1,
        "5xx": 1,
        "no response": 1,
    }
    assert hour.error_rate == pytest.approx(3 / 24)
    # 24 durations: 1..20, 100, 200, 3, and the timeout's 10.0; nearest rank: the 12th, 23rd.
    assert (hour.p50, hour.p95) == (10.0, 100.0)
    assert (day.total, day.failed, day.token_requests) == (25, 4, 1)
    assert day.p95 == 200.0


def test_the_page_shows_the_table_with_links_and_two_svg_charts(admin_client, recent_calls):
    content = admin_client.get(SUMMARY).content.decode()

    assert '<th scope="row">error rate</th>' in content
    assert "12.5%" in content and "16.0%" in content
    assert "10.0 ms" in content and "100.0 ms" in content
    assert content.count("<svg viewBox=") == 2  # (the admin has icon sprites of its own)
    assert 'class="poc-ok"' in content and 'class="poc-failed"' in content
    assert "API calls per minute, last hour (UTC)" in content
    assert "API calls per hour, last 24 hours (UTC)" in content
    assert re.search(
        r'href="/admin/api_client/exchange/\?kind__exact=api&amp;created_at__gte=[^"]+&amp;status_class=4"',
        content,
    )
    assert "/static/api_client/summary.css" in content


def test_the_page_allows_a_strict_content_security_policy(admin_client, recent_calls):
    content = admin_client.get(SUMMARY).content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", content)  # no inline script
    assert " style=" not in content
    assert "<style" not in content
    assert "cdn" not in content.lower()


def test_each_chart_bar_links_to_its_exchanges(admin_client, recent_calls):
    response = admin_client.get(SUMMARY)
    minutes, hours = response.context["charts"]

    assert (minutes.total, hours.total) == (24, 25)
    assert (minutes.failed, hours.failed) == (3, 4)
    for bar in [b for b in hours.bars if b.ok_height or b.failed_height]:
        listed = admin_client.get(bar.href).context["cl"].result_list
        calls = int(re.search(r": (\d+) calls?,", bar.title).group(1))
        assert len(listed) == calls


def test_an_empty_log_shows_dashes(admin_client):
    response = admin_client.get(SUMMARY)

    hour, _ = response.context["windows"]
    assert (hour.total, hour.error_rate, hour.p50) == (0, None, None)
    assert response.status_code == 200
    assert "0 calls, 0 failed." in response.content.decode()


def test_the_page_takes_a_bounded_number_of_queries(
    admin_client, recent_calls, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        admin_client.get(SUMMARY)


def test_the_admin_index_links_to_the_summary(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()

    assert f'href="{SUMMARY}"' in content
    assert "Summary of recent calls" in content


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(SUMMARY)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_need_the_permission_to_view_exchanges(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)

    assert client.get(SUMMARY).status_code == 403
    assert SUMMARY not in client.get(reverse("admin:index")).content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_exchange"))
    staff = django_user_model.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.get(SUMMARY).status_code == 200
    assert SUMMARY in client.get(reverse("admin:index")).content.decode()


def test_the_summary_has_no_other_pages(admin_client):
    response = admin_client.get(f"{SUMMARY}1/change/")

    assert response.status_code == 404
