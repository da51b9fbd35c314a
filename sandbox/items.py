"""``/sandbox/api/items``: a small JSON resource collection stored in the database.

Validation is strict (unknown fields, wrong types and empty names are refused with a message
per field) so that a client's mistakes show up here rather than passing silently. PUT
replaces ``name`` and ``data``; PATCH changes only the fields given (``data`` as a whole).
"""

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse

from sandbox.decorators import sandbox_view
from sandbox.models import Item
from sandbox.parsing import QueryParameterError, parse_json_body, query_int
from sandbox.responses import empty_response, json_error, json_response, not_found

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**9
NAME_MAX_LENGTH = Item._meta.get_field("name").max_length
WRITABLE_FIELDS = ("name", "data")
MAX_ID = 2**63 - 1


class ItemInvalid(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("The item is invalid.")
        self.fields = fields

    def response(self) -> HttpResponse:
        names = ", ".join(sorted(self.fields))
        return json_error(
            400, "invalid_request", f"Invalid item: check {names}.", fields=self.fields
        )


def validate_item(payload: object, *, partial: bool) -> dict[str, object]:
    """Return the writable fields from a request body, or raise ``ItemInvalid``."""
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    errors = {
        name: "Unknown field; the writable fields are name and data."
        for name in payload
        if name not in WRITABLE_FIELDS
    }
    if "name" in payload:
        name = payload["name"]
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "Must be a non-empty string."
        elif len(name) > NAME_MAX_LENGTH:
            errors["name"] = f"Must be at most {NAME_MAX_LENGTH} characters; got {len(name)}."
    elif not partial:
        errors["name"] = "This field is required."
    if "data" in payload and not isinstance(payload["data"], dict):
        errors["data"] = "Must be a JSON object."
    if errors:
        raise ItemInvalid(errors)
    return {name: payload[name] for name in WRITABLE_FIELDS if name in payload}


@sandbox_view(("GET", "POST"), auth=True, inject=True)
def items(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _create(request)
    try:
        limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
    except QueryParameterError as exc:
        return json_error(400, "invalid_request", str(exc), parameter=exc.parameter)
    queryset = Item.objects.all()
    page = [item.as_json() for item in queryset[offset : offset + limit]]
    return json_response(
        {"items": page, "count": queryset.count(), "limit": limit, "offset": offset}
    )


def _create(request: HttpRequest) -> HttpResponse:
    try:
        fields = validate_item(parse_json_body(request), partial=False)
    except ItemInvalid as exc:
        return exc.response()
    item = Item.objects.create(**fields)
    return json_response(item.as_json(), status=201)


@sandbox_view(("GET", "PUT", "PATCH", "DELETE"), auth=True, inject=True)
def item(request: HttpRequest, item_id: int) -> HttpResponse:
    found = Item.objects.filter(pk=item_id).first() if item_id <= MAX_ID else None
    if found is None:
        return not_found(f"Item {item_id} does not exist.")
    if request.method in ("GET", "HEAD"):
        return json_response(found.as_json())
    if request.method == "DELETE":
        found.delete()
        return empty_response(204)
    try:
        fields = validate_item(parse_json_body(request), partial=request.method == "PATCH")
    except ItemInvalid as exc:
        return exc.response()
    if request.method == "PUT":
        fields.setdefault("data", {})
    for name, value in fields.items():
        setattr(found, name, value)
    found.save(update_fields=[*fields, "updated_at"])
    return json_response(found.as_json())
