import pytest
from django.urls import reverse

from sandbox.models import Grant, Item
from tests.sandbox.helpers import grant

pytestmark = pytest.mark.django_db


def test_grant_admin_shows_grants_without_full_hashes(admin_client, client):
    grant(client)
    row = Grant.objects.get()

    changelist = admin_client.get(reverse("admin:sandbox_grant_changelist"))
    change = admin_client.get(reverse("admin:sandbox_grant_change", args=[row.pk]))

    for response in (changelist, change):
        assert response.status_code == 200
        content = response.content.decode()
        assert row.refresh_token_hash[:8] in content
        assert row.refresh_token_hash not in content


def test_grant_admin_is_read_only(admin_client, client):
    grant(client)
    row = Grant.objects.get()

    assert admin_client.get(reverse("admin:sandbox_grant_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:sandbox_grant_change", args=[row.pk]), {"client_id": "changed"}
    )
    assert response.status_code == 403
    assert Grant.objects.get().client_id == row.client_id


def test_item_admin_lists_and_edits_items(admin_client):
    item = Item.objects.create(name="widget", data={"a": 1})

    assert "widget" in admin_client.get(reverse("admin:sandbox_item_changelist")).content.decode()
    assert admin_client.get(reverse("admin:sandbox_item_change", args=[item.pk])).status_code == 200
