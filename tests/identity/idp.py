"""A small OAuth 2 / OpenID Connect provider built on authlib's server, for loopback tests.

Serves discovery, JWKS, authorize (approves at once as the configured person), token
(authorization code + PKCE; an RS256 ID token when `openid` is asked) and userinfo; the
same endpoints under GitHub's paths (/login/oauth/..., /user) for the plain OAuth flow.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Person:
    sub: str = "idp-user-1"
    name: str = "Ada Lovelace"
    email: str = "ada@example.test"
    picture: str = "http://127.0.0.1/ada.png"


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Person
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(time.time())

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class IdpState:
    issuer: str
    person: Person = field(default_factory=Person)
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    # Set to sign ID tokens with a key the JWKS does not publish (a forged token).
    signing_key: RSAKey | None = None
    # Set to put another audience in ID tokens.
    audience: str | None = None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self, method: str, url: str, headers: Any, query: dict[str, str], form: dict[str, str]
    ):
        super().__init__(method=method, uri=url, headers=headers)
        self._args, self._form = query, form
        self.payload = BasicOAuth2Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def build_idp(state: IdpState) -> Starlette:
    class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            state.codes[code] = Code(
                code=code,
                client_id=request.client.get_client_id(),
                redirect_uri=data.get("redirect_uri", ""),
                scope=data.get("scope", ""),
                user=request.user,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                nonce=data.get("nonce"),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = state.codes.get(code)
            return found if found and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            state.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> Person:
            return authorization_code.user

    class OpenId(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return False

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return state.signing_key or state.key

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {"iss": state.issuer, "aud": [state.audience or client.client_id]}

        def generate_user_info(self, user: Person, scope: str) -> UserInfo:
            return UserInfo(sub=user.sub, name=user.name, email=user.email, picture=user.picture)

    class Server(AuthorizationServer):  # type: ignore[misc]
        def query_client(self, client_id: str) -> Client | None:
            return state.clients.get(client_id)

        def save_token(self, token: dict[str, Any], request: Any) -> None:
            state.tokens[token["access_token"]] = request.user

        def create_oauth2_request(self, request: Any) -> Any:
            return request

        def handle_response(self, status: int, body: Any, headers: Any) -> Response:
            headers = dict(headers)
            if status == 302:
                return RedirectResponse(headers["Location"], status_code=302)
            return JSONResponse(body, status_code=status, headers=headers)

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass

    server = Server()
    server.register_token_generator(
        "default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(24))
    )
    server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenId(require_nonce=True)])

    async def oauth_request(request: Request) -> _Request:
        form = dict(parse_qsl((await request.body()).decode())) if request.method == "POST" else {}
        return _Request(
            request.method, str(request.url), request.headers, dict(request.query_params), form
        )

    async def discovery(_: Request) -> Response:
        base = state.issuer
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(_: Request) -> Response:
        return JSONResponse({"keys": [state.key.as_dict(private=False)]})

    async def authorize(request: Request) -> Response:
        oauth = await oauth_request(request)
        try:
            grant = server.get_consent_grant(oauth, end_user=state.person)
        except Exception as exc:
            return JSONResponse({"error": type(exc).__name__}, status_code=400)
        return server.create_authorization_response(oauth, grant_user=state.person, grant=grant)

    async def token(request: Request) -> Response:
        return server.create_token_response(await oauth_request(request))

    async def userinfo(request: Request) -> Response:
        person = state.tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))
        if person is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if request.url.path == "/user":  # GitHub's shape
            return JSONResponse(
                {
                    "id": 4242,
                    "login": "ada",
                    "name": person.name,
                    "email": person.email,
                    "avatar_url": person.picture,
                }
            )
        return JSONResponse(dict(UserInfo(sub=person.sub, name=person.name, email=person.email)))

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/login/oauth/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/login/oauth/access_token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
            Route("/user", userinfo),
        ]
    )
