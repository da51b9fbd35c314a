import base64
from urllib.parse import quote_plus, urlencode

from django.test import Client

TOKEN_URL = "/sandbox/oauth/token"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
# Characters that RFC 6749 2.3.1's form-urlencoding inside Basic exists for.
ODD_CLIENT_ID, ODD_CLIENT_SECRET = "team:alpha", "s3cret/+&= ü"
FORM = "application/x-www-form-urlencoded"


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET, *, encode: bool = True) -> str:
    if encode:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_token(
    client: Client, params: dict, *, authorization: str | None = None, query: str = ""
) -> object:
    headers = {"Authorization": authorization} if authorization else {}
    url = f"{TOKEN_URL}?{query}" if query else TOKEN_URL
    return client.post(url, data=urlencode(params), content_type=FORM, headers=headers)


def grant(client: Client, **params: str) -> dict:
    """A successful client_credentials grant (Basic auth), as the JSON body."""
    response = post_token(
        client, {"grant_type": "client_credentials", **params}, authorization=basic()
    )
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def auth_headers(client: Client) -> dict[str, str]:
    return bearer(grant(client)["access_token"])
