import pytest

from sandbox.models import Item

pytestmark = pytest.mark.django_db

ITEMS = "/sandbox/api/items"
JSON = "application/json"


@pytest.fixture
def api(client, headers):
    """Call the items API as an authenticated client, JSON in and out."""

    def call(method: str, path: str = ITEMS, body: object = None, **kwargs):
        if body is not None:
            kwargs.update(data=body, content_type=JSON)
        return getattr(client, method)(path, headers=headers, **kwargs)

    return call


def assert_field_error(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"]
    assert field in body["fields"]


def test_post_creates_an_item(api):
    response = api("post", body={"name": "first", "data": {"n": 1}})

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["data"]) == ("first", {"n": 1})
    assert {"id", "created_at", "updated_at"} <= set(body)
    assert Item.objects.get(pk=body["id"]).name == "first"


def test_post_without_data_defaults_to_an_empty_object(api):
    assert api("post", body={"name": "bare"}).json()["data"] == {}


def test_get_lists_items_with_the_total_count(api):
    for n in range(3):
        Item.objects.create(name=f"item {n}")

    body = api("get").json()

    assert body["count"] == 3
    assert [item["name"] for item in body["items"]] == ["item 0", "item 1", "item 2"]


def test_list_is_paged_with_limit_and_offset(api):
    Item.objects.bulk_create(Item(name=f"item {n}") for n in range(60))

    default = api("get").json()
    page = api("get", data={"limit": 5, "offset": 10}).json()

    assert (len(default["items"]), default["count"]) == (50, 60)
    assert [item["name"] for item in page["items"]] == [f"item {n}" for n in range(10, 15)]
    assert page["count"] == 60


@pytest.mark.parametrize(
    ("param", "value"),
    [("limit", "abc"), ("limit", "-1"), ("limit", "501"), ("offset", "-1"), ("offset", "x")],
)
def test_bad_paging_parameter_is_a_400_naming_it(api, param, value):
    response = api("get", data={param: value})

    assert response.status_code == 400
    assert response.json()["parameter"] == param
    assert param in response.json()["error_description"]


def test_get_put_patch_delete_one_item(api):
    item = Item.objects.create(name="old", data={"a": 1, "b": 2})
    url = f"{ITEMS}/{item.pk}"

    assert api("get", url).json()["name"] == "old"

    put = api("put", url, {"name": "new"})
    assert put.status_code == 200
    assert (put.json()["name"], put.json()["data"]) == ("new", {})  # PUT replaces

    patch = api("patch", url, {"data": {"c": 3}})
    assert patch.status_code == 200
    assert (patch.json()["name"], patch.json()["data"]) == ("new", {"c": 3})

    deleted = api("delete", url)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert not Item.objects.filter(pk=item.pk).exists()


def test_update_moves_updated_at(api):
    item = Item.objects.create(name="x")

    body = api("patch", f"{ITEMS}/{item.pk}", {"name": "y"}).json()

    assert body["updated_at"] > item.updated_at.isoformat()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_item_is_a_json_404(api, method):
    response = api(method, f"{ITEMS}/999999", {"name": "x"} if method in ("put", "patch") else None)

    assert response.status_code == 404
    assert response["Content-Type"] == JSON
    assert response.json()["error"] == "not_found"


def test_out_of_range_item_id_is_a_404_not_a_crash(api):
    assert api("get", f"{ITEMS}/{10**30}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "data": [1]}, "data"),
        ({"name": "ok", "data": "text"}, "data"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ],
)
def test_invalid_item_is_a_400_naming_the_field(api, body, field):
    assert_field_error(api("post", body=body), field)
    assert not Item.objects.exists()


def test_name_of_exactly_200_characters_is_accepted(api):
    assert api("post", body={"name": "x" * 200}).status_code == 201


def test_put_requires_name_but_patch_does_not(api):
    item = Item.objects.create(name="x")
    url = f"{ITEMS}/{item.pk}"

    assert_field_error(api("put", url, {"data": {}}), "name")
    assert api("patch", url, {"data": {}}).status_code == 200


def test_patch_validates_the_fields_it_gets(api):
    item = Item.objects.create(name="x")

    assert_field_error(api("patch", f"{ITEMS}/{item.pk}", {"name": ""}), "name")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "JSON object"),
        ('{"name": NaN}', "not valid JSON"),
    ],
)
def test_bad_json_body_is_a_400_naming_the_problem(client, headers, raw, problem):
    response = client.post(ITEMS, data=raw, content_type=JSON, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert problem in response.json()["error_description"]


def test_items_need_a_bearer_token(client):
    Item.objects.create(name="private")

    response = client.get(ITEMS)

    assert response.status_code == 401
    assert "private" not in response.content.decode()
