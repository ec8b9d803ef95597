"""Sign-in, sessions, personal access tokens and agent credential state (inventory §3.12)."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.deps import SESSION_COOKIE, CurrentPrincipal, SessionDep, StateDep, request_credential
from api.routes.setup import agent_credentials, workspace_secret_names
from core.crypto import DecryptionError, decrypt, encrypt
from core.errors import NotFoundError
from core.settings import Settings
from integrations.oauth import Provider, SignInError, enabled_providers, finish_login, start_login
from schemas.identity import (
    ApiKeyCreate,
    ApiKeyMinted,
    ApiKeyPublic,
    ApiKeysPublic,
    AuthProvidersPublic,
    CredentialStatusPublic,
    MePublic,
    UsagePublic,
)
from schemas.task_views import Ok
from store.auth import (
    SESSION_ABSOLUTE,
    create_api_key,
    create_session,
    list_api_keys,
    revoke_api_key,
    revoke_session,
    upsert_oauth_user,
)
from store.models import ApiKey, User
from store.secrets import secret_key

log = logging.getLogger(__name__)
router = APIRouter(tags=["Auth & Sessions"])

LOGIN_COOKIE = "optio_oauth"
LOGIN_TTL = 600
LOGIN_AAD = b"optio-oauth-login"


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


def _login_page(settings: Settings, error: str) -> RedirectResponse:
    base = (settings.web_url or settings.public_base_url).rstrip("/")
    response = RedirectResponse(f"{base}/login?{urlencode({'error': error})}", status_code=302)
    response.delete_cookie(LOGIN_COOKIE, path="/api/auth")
    return response


def _provider(settings: Settings, name: str) -> Provider:
    provider = enabled_providers(settings).get(name)
    if provider is None:
        raise NotFoundError(f"Unknown or disabled sign-in provider: {name}")
    return provider


def _redirect_uri(settings: Settings, provider: str) -> str:
    return f"{settings.public_base_url}/api/auth/{provider}/callback"


def _seal_login(settings: Settings, data: dict[str, Any]) -> str:
    # Encrypted, not just signed: the PKCE verifier must stay unreadable to scripts and logs.
    nonce, ciphertext = encrypt(secret_key(settings), json.dumps(data), aad=LOGIN_AAD)
    return base64.urlsafe_b64encode(nonce + ciphertext).decode()


def _open_login(settings: Settings, cookie: str | None) -> dict[str, Any] | None:
    if not cookie:
        return None
    try:
        raw = base64.urlsafe_b64decode(cookie.encode())
        data: dict[str, Any] = json.loads(
            decrypt(secret_key(settings), raw[:12], raw[12:], aad=LOGIN_AAD)
        )
    except (ValueError, DecryptionError):
        return None
    return data if data.get("exp", 0) > time.time() else None


# The sign-in hops answer redirects only: to the provider, back to the app, or to the
# login page with `?error=provider_error|invalid_state|auth_failed`.
REDIRECT: dict[int | str, dict[str, Any]] = {
    302: {
        "description": "Redirect (see `Location`)",
        "headers": {
            "Location": {"description": "Where the browser goes next", "schema": {"type": "string"}}
        },
    }
}


@router.get("/api/auth/providers", response_model=AuthProvidersPublic)
async def providers(state: StateDep) -> dict[str, list[dict[str, str]]]:
    return {
        "providers": [
            {"name": p.name, "displayName": p.display_name}
            for p in enabled_providers(state.settings).values()
        ]
    }


@router.get(
    "/api/auth/{provider}/login",
    status_code=302,
    response_class=RedirectResponse,
    responses=REDIRECT,
)
async def login(provider: str, request: Request, state: StateDep) -> Response:
    settings = state.settings
    chosen = _provider(settings, provider)
    try:
        start = await start_login(chosen, redirect_uri=_redirect_uri(settings, provider))
    except Exception as exc:
        log.warning("sign-in with %s could not start: %s", provider, type(exc).__name__)
        return _login_page(settings, "provider_error")
    response = RedirectResponse(start.url, status_code=302)
    sealed = _seal_login(
        settings,
        {
            "p": provider,
            "s": start.state,
            "v": start.code_verifier,
            "n": start.nonce,
            "exp": time.time() + LOGIN_TTL,
        },
    )
    response.set_cookie(
        LOGIN_COOKIE,
        sealed,
        max_age=LOGIN_TTL,
        path="/api/auth",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )
    return response


@router.get(
    "/api/auth/{provider}/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses=REDIRECT,
)
async def callback(
    provider: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    code: str | None = None,
    error: str | None = None,
) -> Response:
    settings = state.settings
    chosen = _provider(settings, provider)
    if error:
        return _login_page(settings, "provider_error")
    pending = _open_login(settings, request.cookies.get(LOGIN_COOKIE))
    given_state = request.query_params.get("state")
    if (
        pending is None
        or pending.get("p") != provider
        or not given_state
        or given_state != pending.get("s")
    ):
        return _login_page(settings, "invalid_state")
    if not code:
        return _login_page(settings, "auth_failed")
    try:
        identity = await finish_login(
            chosen,
            redirect_uri=_redirect_uri(settings, provider),
            code=code,
            code_verifier=pending["v"],
            nonce=pending["n"],
        )
    except SignInError as exc:
        log.warning("sign-in failed: %s", exc)
        return _login_page(settings, "auth_failed")
    user = await upsert_oauth_user(
        session,
        provider=provider,
        external_id=identity.external_id,
        email=identity.email,
        display_name=identity.display_name,
        avatar_url=identity.avatar_url,
    )
    token = await create_session(session, user_id=user.id)
    await session.commit()
    response = RedirectResponse(f"{(settings.web_url or settings.public_base_url)}/", 302)
    response.delete_cookie(LOGIN_COOKIE, path="/api/auth")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        # The browser may keep it for the absolute lifetime; the server slides the 7 days.
        max_age=int(SESSION_ABSOLUTE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )
    return response


@router.get("/api/auth/me", response_model=MePublic)
async def me(principal: CurrentPrincipal, session: SessionDep) -> dict[str, object]:
    user = await session.get(User, principal.user_id)
    assert user is not None
    return {
        "user": {
            "id": user.id,
            "provider": user.provider,
            "email": user.email,
            "displayName": user.display_name,
            "avatarUrl": user.avatar_url,
            "workspaceId": principal.workspace_id,
            "workspaceRole": principal.role,
        },
        "authDisabled": False,
    }


@router.post("/api/auth/logout", response_model=Ok)
async def logout(
    request: Request, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> Response:
    token = request_credential(request)
    if token:
        # A personal access token is revoked with DELETE /api/auth/api-keys/{id}, not here.
        await revoke_session(session, token=token)
        await session.commit()
    response = Response(content=b'{"ok":true}', media_type="application/json")
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, state.settings),
    )
    return response


def key_public(key: ApiKey) -> dict[str, Any]:
    return ApiKeyPublic.model_validate(key).model_dump(mode="json", by_alias=True)


@router.post("/api/auth/api-keys", status_code=201, response_model=ApiKeyMinted)
async def create_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    token, key = await create_api_key(
        session, user_id=principal.user_id, name=body.name, expires_at=body.expires_at
    )
    await session.commit()
    # The only time the token is shown.
    return {"token": token, "tokenId": key.id, "prefix": key.prefix, "name": key.name}


@router.get("/api/auth/api-keys", response_model=ApiKeysPublic)
async def list_keys(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return {
        "keys": [key_public(k) for k in await list_api_keys(session, user_id=principal.user_id)]
    }


@router.delete("/api/auth/api-keys/{key_id}", response_model=Ok)
async def revoke_key(
    key_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    if not await revoke_api_key(session, user_id=principal.user_id, key_id=key_id):
        raise NotFoundError("API key not found")
    await session.commit()
    return {"ok": True}


@router.get("/api/auth/status", response_model=CredentialStatusPublic)
async def credential_status(
    principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    names = await workspace_secret_names(session, workspace_id=principal.workspace_id)
    agents = agent_credentials(state.settings, names)
    claude = agents["claude-code"]
    # We do not probe the vendors' subscription APIs: "available" means "configured".
    return {
        "subscription": {
            "available": claude["configured"],
            "source": claude["source"],
            "expiresAt": None,
            "expired": False,
            "error": None,
            "lastValidated": None,
        },
        "agents": agents,
    }


@router.get("/api/auth/usage", response_model=UsagePublic)
async def usage(
    principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    names = await workspace_secret_names(session, workspace_id=principal.workspace_id)
    return {
        "usage": {
            "available": False,
            "reason": "plan usage is not collected; see agents for configured credentials",
            "hasRecentAuthFailure": False,
            "authFailures": {"claude": 0, "github": 0},
            "agents": agent_credentials(state.settings, names),
        }
    }
