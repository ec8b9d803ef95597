"""Real sign-in, end to end, against the authlib provider in idp.py on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from joserfc.jwk import RSAKey
from pydantic import SecretStr
from sqlalchemy import select

from integrations import oauth
from store.db import create_engine, session_factory, transaction
from store.models import AuthSession, User
from tests.conftest import Optio, free_port
from tests.identity.idp import Client, IdpState, build_idp


@pytest.fixture
async def idp(api_only: Optio) -> AsyncIterator[IdpState]:
    port = free_port()
    state = IdpState(issuer=f"http://127.0.0.1:{port}")
    api = api_only.settings.public_base_url
    for provider, client_id in (("oidc", "optio-oidc"), ("github", "optio-gh")):
        state.clients[client_id] = Client(
            client_id=client_id,
            client_secret=f"{client_id}-secret",
            redirect_uri=f"{api}/api/auth/{provider}/callback",
        )
    server = uvicorn.Server(
        uvicorn.Config(build_idp(state), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    settings = api_only.settings
    settings.oidc_issuer_url = state.issuer
    settings.oidc_client_id = "optio-oidc"
    settings.oidc_client_secret = SecretStr("optio-oidc-secret")
    settings.oidc_display_name = "Test SSO"
    settings.github_oauth_client_id = "optio-gh"
    settings.github_oauth_client_secret = SecretStr("optio-gh-secret")
    settings.github_oauth_base_url = state.issuer
    settings.github_api_url = state.issuer
    oauth._discovery_cache.clear()
    try:
        yield state
    finally:
        server.should_exit = True
        await task


async def start(browser: httpx.AsyncClient, provider: str = "oidc") -> str:
    """Login at Optio, approve at the provider; returns the callback URL it sends us to."""
    login = await browser.get(f"/api/auth/{provider}/login")
    assert login.status_code == 302, login.text
    authorize = login.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert "code_verifier" not in authorize
    approved = await browser.get(authorize)
    assert approved.status_code == 302, approved.text
    callback: str = approved.headers["location"]
    return callback


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert urlsplit(location).path == "/login", location
    return parse_qs(urlsplit(location).query)["error"][0]


@pytest.fixture
async def browser(api_only: Optio) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=str(api_only.anon.base_url), timeout=30) as client:
        yield client


async def test_oidc_sign_in_end_to_end(
    api_only: Optio, idp: IdpState, browser: httpx.AsyncClient
) -> None:
    providers = (await api_only.anon.get("/api/auth/providers")).json()["providers"]
    assert {"name": "oidc", "displayName": "Test SSO"} in providers
    login_cookie = None
    callback = await start(browser)
    login_cookie = browser.cookies.get("optio_oauth")
    assert login_cookie and "code_verifier" not in login_cookie
    done = await browser.get(callback)
    assert done.status_code == 302 and done.headers["location"].endswith("/")
    set_cookie = done.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookie if c.startswith("optio_session="))
    lowered = session_cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # served over http on loopback
    me = (await browser.get("/api/auth/me")).json()["user"]
    assert me["provider"] == "oidc" and me["email"] == "ada@example.test"
    assert me["displayName"] == "Ada Lovelace" and me["workspaceRole"] == "admin"
    # Their own workspace, not the local admin's.
    assert me["workspaceId"] != api_only.workspace_id
    assert (await browser.get("/api/tasks")).status_code == 200
    # The session is stored hashed, expiring in 7 days.
    engine = create_engine(api_only.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        user = (await session.execute(select(User).where(User.provider == "oidc"))).scalar_one()
        row = (
            await session.execute(select(AuthSession).where(AuthSession.user_id == user.id))
        ).scalar_one()
        token = browser.cookies.get("optio_session")
        assert token and row.token_hash != token
        days = (row.expires_at - row.created_at).total_seconds() / 86400
        assert 6.9 < days <= 7.0
    await engine.dispose()
    # Signing in again is the same user, a new session; logout revokes this one.
    again = await browser.get(await start(browser))
    assert again.status_code == 302
    assert (await browser.get("/api/auth/me")).json()["user"]["id"] == me["id"]
    second = browser.cookies.get("optio_session")
    assert second and second != token
    assert (await browser.post("/api/auth/logout")).json() == {"ok": True}
    assert browser.cookies.get("optio_session") is None
    gone = await api_only.anon.get("/api/auth/me", headers={"Cookie": f"optio_session={second}"})
    assert gone.status_code == 401
    # The first session (another browser, say) is untouched by this logout.
    token = f"optio_session={token}"
    assert (await api_only.anon.get("/api/auth/me", headers={"Cookie": token})).status_code == 200


async def test_github_shaped_oauth_sign_in(
    api_only: Optio, idp: IdpState, browser: httpx.AsyncClient
) -> None:
    done = await browser.get(await start(browser, "github"))
    assert done.status_code == 302
    me = (await browser.get("/api/auth/me")).json()["user"]
    assert me["provider"] == "github" and me["displayName"] == "Ada Lovelace"


async def test_state_mismatch_and_tampered_callbacks_are_refused(
    api_only: Optio, idp: IdpState, browser: httpx.AsyncClient
) -> None:
    callback = await start(browser)
    assert error_of(await browser.get(with_query(callback, state="forged"))) == "invalid_state"
    missing_state = with_query(callback)
    missing_state = missing_state.replace("state=", "x=")
    assert error_of(await browser.get(missing_state)) == "invalid_state"
    # Another browser (no login cookie) cannot use this callback.
    async with httpx.AsyncClient(base_url=str(browser.base_url)) as other:
        assert error_of(await other.get(callback)) == "invalid_state"
    # A tampered cookie is no cookie.
    browser.cookies.set(
        "optio_oauth", "AAAA" + (browser.cookies.get("optio_oauth") or ""), path="/api/auth"
    )
    assert error_of(await browser.get(callback)) == "invalid_state"

    browser.cookies.clear()
    callback = await start(browser)
    assert error_of(await browser.get(with_query(callback, code="tampered"))) == "auth_failed"
    # The provider's error comes back as a reason, never a stack trace.
    denied = await browser.get(with_query(callback, error="access_denied"))
    assert error_of(denied) == "provider_error"
    assert (await browser.get("/api/auth/me")).status_code == 401


async def test_a_forged_or_misaddressed_id_token_is_refused(
    api_only: Optio, idp: IdpState, browser: httpx.AsyncClient
) -> None:
    idp.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    assert error_of(await browser.get(await start(browser))) == "auth_failed"
    idp.signing_key, idp.audience = None, "someone-else"
    assert error_of(await browser.get(await start(browser))) == "auth_failed"
    idp.audience = None
    callback = await start(browser)
    assert (await browser.get(callback)).headers["location"].endswith("/")
    # A code works once.
    browser.cookies.clear()
    callback2 = await start(browser)
    await browser.get(callback2)
    await start(browser)  # a fresh login cookie, then replay the old code with its state
    replay = with_query(callback2)
    response = await browser.get(replay)
    assert error_of(response) in {"invalid_state", "auth_failed"}


async def test_unknown_provider_is_404(api_only: Optio) -> None:
    for path in ("/api/auth/nope/login", "/api/auth/nope/callback", "/api/auth/github/login"):
        response = await api_only.anon.get(path)
        assert response.status_code == 404, path
        assert "Traceback" not in response.text
