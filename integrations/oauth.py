"""Sign-in with GitHub, Google, GitLab or any OIDC issuer (authlib; code flow with PKCE).

GitHub and GitLab are plain OAuth 2 with a profile endpoint; Google and generic OIDC
use discovery and verify the ID token's signature against the issuer's JWKS.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from core.settings import Settings
from integrations.tls import tls_context

# authlib and joserfc (some 100 modules and 10 MiB in every API process) are imported
# when a sign-in happens: most deployments configure no provider.
if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

DISCOVERY_TTL = 24 * 3600.0
TIMEOUT = 15.0


class SignInError(Exception):
    """The provider refused, or what it sent does not check out; the message is for logs."""


@dataclass(frozen=True)
class Provider:
    name: str
    display_name: str
    client_id: str
    client_secret: str
    scope: str
    # Plain OAuth providers know their endpoints; OIDC ones discover them from the issuer.
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    profile_url: str | None = None


@dataclass(frozen=True)
class Identity:
    external_id: str
    email: str | None
    display_name: str
    avatar_url: str | None


@dataclass(frozen=True)
class LoginStart:
    url: str
    state: str
    code_verifier: str
    nonce: str


def enabled_providers(settings: Settings) -> dict[str, Provider]:
    found: list[Provider] = []
    if settings.github_oauth_client_id and settings.github_oauth_client_secret:
        base = settings.github_oauth_base_url.rstrip("/")
        found.append(
            Provider(
                name="github",
                display_name="GitHub",
                client_id=settings.github_oauth_client_id,
                client_secret=settings.github_oauth_client_secret.get_secret_value(),
                scope="read:user user:email",
                authorize_url=f"{base}/login/oauth/authorize",
                token_url=f"{base}/login/oauth/access_token",
                profile_url=f"{settings.github_api_url.rstrip('/')}/user",
            )
        )
    if settings.google_oauth_client_id and settings.google_oauth_client_secret:
        found.append(
            Provider(
                name="google",
                display_name="Google",
                client_id=settings.google_oauth_client_id,
                client_secret=settings.google_oauth_client_secret.get_secret_value(),
                scope="openid email profile",
                issuer="https://accounts.google.com",
            )
        )
    if settings.gitlab_oauth_client_id and settings.gitlab_oauth_client_secret:
        base = settings.gitlab_oauth_base_url.rstrip("/")
        found.append(
            Provider(
                name="gitlab",
                display_name="GitLab",
                client_id=settings.gitlab_oauth_client_id,
                client_secret=settings.gitlab_oauth_client_secret.get_secret_value(),
                scope="read_user",
                authorize_url=f"{base}/oauth/authorize",
                token_url=f"{base}/oauth/token",
                profile_url=f"{base}/api/v4/user",
            )
        )
    if settings.oidc_issuer_url and settings.oidc_client_id and settings.oidc_client_secret:
        found.append(
            Provider(
                name="oidc",
                display_name=settings.oidc_display_name,
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value(),
                scope=settings.oidc_scopes,
                issuer=settings.oidc_issuer_url.rstrip("/"),
            )
        )
    return {p.name: p for p in found}


_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def discover(issuer: str) -> dict[str, Any]:
    """The issuer's metadata, cached for a day (it changes rarely; JWKS is fetched per login)."""
    cached = _discovery_cache.get(issuer)
    if cached and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1]
    async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as client:
        response = await client.get(f"{issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    metadata: dict[str, Any] = response.json()
    if metadata.get("issuer", "").rstrip("/") != issuer:
        raise SignInError("discovery document names another issuer")
    _discovery_cache[issuer] = (time.monotonic(), metadata)
    return metadata


def _client(provider: Provider, redirect_uri: str) -> AsyncOAuth2Client:
    from authlib.deprecate import AuthlibDeprecationWarning

    with warnings.catch_warnings():
        # authlib 1.9 announces a move to "httpx2"; the httpx client it ships works the same.
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=TIMEOUT,
    )


async def start_login(provider: Provider, *, redirect_uri: str) -> LoginStart:
    authorize_url = provider.authorize_url
    if provider.issuer:
        authorize_url = (await discover(provider.issuer))["authorization_endpoint"]
    assert authorize_url is not None
    from authlib.common.security import generate_token

    state, verifier, nonce = generate_token(32), generate_token(48), generate_token(32)
    extra = {"nonce": nonce} if provider.issuer else {}
    async with _client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            authorize_url, state=state, code_verifier=verifier, **extra
        )
    return LoginStart(url=url, state=state, code_verifier=verifier, nonce=nonce)


async def finish_login(
    provider: Provider, *, redirect_uri: str, code: str, code_verifier: str, nonce: str
) -> Identity:
    """Exchange the code and return who signed in; raises SignInError on anything off."""
    try:
        if provider.issuer:
            return await _finish_oidc(provider, redirect_uri, code, code_verifier, nonce)
        return await _finish_oauth(provider, redirect_uri, code, code_verifier)
    except SignInError:
        raise
    except Exception as exc:  # authlib, httpx and joserfc errors all mean "not signed in"
        raise SignInError(f"{provider.name}: {type(exc).__name__}") from exc


async def _finish_oauth(
    provider: Provider, redirect_uri: str, code: str, code_verifier: str
) -> Identity:
    assert provider.token_url and provider.profile_url
    async with _client(provider, redirect_uri) as client:
        await client.fetch_token(provider.token_url, code=code, code_verifier=code_verifier)
        response = await client.get(provider.profile_url, headers={"Accept": "application/json"})
        response.raise_for_status()
        profile: dict[str, Any] = response.json()
    if profile.get("id") is None:
        raise SignInError(f"{provider.name}: profile without an id")
    return Identity(
        external_id=str(profile["id"]),
        email=profile.get("email"),
        display_name=str(profile.get("name") or profile.get("login") or profile.get("username")),
        avatar_url=profile.get("avatar_url"),
    )


async def _finish_oidc(
    provider: Provider, redirect_uri: str, code: str, code_verifier: str, nonce: str
) -> Identity:
    assert provider.issuer
    metadata = await discover(provider.issuer)
    async with _client(provider, redirect_uri) as client:
        token = await client.fetch_token(
            metadata["token_endpoint"], code=code, code_verifier=code_verifier
        )
        jwks = (await client.get(metadata["jwks_uri"])).raise_for_status().json()
    id_token = token.get("id_token")
    if not id_token:
        raise SignInError(f"{provider.name}: no id_token in the token response")
    claims = verify_id_token(
        id_token, jwks=jwks, issuer=provider.issuer, client_id=provider.client_id, nonce=nonce
    )
    return Identity(
        external_id=str(claims["sub"]),
        email=claims.get("email"),
        display_name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
        avatar_url=claims.get("picture"),
    )


def verify_id_token(
    id_token: str, *, jwks: dict[str, Any], issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """Signature (issuer's JWKS), issuer, audience, expiry and our nonce, or SignInError."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(jwks))  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
    except Exception as exc:
        raise SignInError(f"id_token rejected: {type(exc).__name__}") from exc
    return dict(decoded.claims)
