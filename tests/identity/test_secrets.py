"""Secrets through the API: never a value out, bound to their row, found user -> repo -> global."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text

from cli.secrets import rotate
from core.crypto import derive_key
from store.db import create_engine, session_factory, transaction
from store.secrets import Secret, resolve_secret, secret_key
from tests.conftest import Optio
from tests.identity.conftest import Person

PLAIN = "ghp_plaintext_value_0123456789"
REPO = "https://github.com/acme/widgets"


async def put(client: Any, name: str, value: str, scope: str | None = None) -> Any:
    body = {"name": name, "value": value, **({"scope": scope} if scope else {})}
    return await client.post("/api/secrets", json=body)


async def test_create_list_update_delete_and_values_never_leave(api_only: Optio) -> None:
    created = await put(api_only.client, "GITHUB_TOKEN", PLAIN)
    assert created.status_code == 201 and PLAIN not in created.text
    assert created.json()["secret"]["scope"] == "global"
    updated = await put(api_only.client, "GITHUB_TOKEN", PLAIN + "2")
    assert updated.status_code == 200
    await put(api_only.client, "GITHUB_TOKEN", "repo-value", scope=REPO + "/")
    listed = await api_only.client.get("/api/secrets")
    assert PLAIN not in listed.text and "repo-value" not in listed.text
    rows = listed.json()["secrets"]
    assert [(r["name"], r["scope"]) for r in rows] == [
        ("GITHUB_TOKEN", "global"),
        ("GITHUB_TOKEN", REPO),
    ]
    assert set(rows[0]) == {"id", "name", "scope", "userId", "createdAt", "updatedAt"}
    only_repo = await api_only.client.get("/api/secrets", params={"scope": REPO})
    assert len(only_repo.json()["secrets"]) == 1
    gone = await api_only.client.delete("/api/secrets/GITHUB_TOKEN", params={"scope": REPO})
    assert gone.status_code == 204
    again = await api_only.client.delete("/api/secrets/GITHUB_TOKEN", params={"scope": REPO})
    assert again.status_code == 404


async def test_bad_names_and_oversized_values_are_400(api_only: Optio) -> None:
    for name in ("lower", "1STARTS_WITH_DIGIT", "HAS-DASH", "HAS SPACE", ""):
        response = await put(api_only.client, name, "v")
        assert response.status_code == 400, name
        assert response.json()["error"] == "Invalid fields: name"
    big = await put(api_only.client, "BIG", "x" * (64 * 1024 + 1))
    assert big.status_code == 400 and big.json()["error"] == "Invalid fields: value"
    assert "xxxx" not in big.text
    assert (await put(api_only.client, "EXACTLY_64K", "x" * (64 * 1024))).status_code == 201


async def test_stored_encrypted_and_bound_to_the_row(api_only: Optio) -> None:
    await put(api_only.client, "A_TOKEN", PLAIN)
    await put(api_only.client, "B_TOKEN", "other-value-here")
    engine = create_engine(api_only.settings.database_url_resolved)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        raw = (await session.execute(text("SELECT * FROM secrets"))).all()
        assert PLAIN.encode() not in repr(raw).encode() and PLAIN not in repr(raw)
        rows = (await session.execute(select(Secret).order_by(Secret.name))).scalars()
        a, b = list(rows)
        assert len(a.nonce) == 12
        # Copy A's ciphertext onto B's row: B must not decrypt to A's value.
        b.nonce, b.ciphertext = a.nonce, a.ciphertext
    async with transaction(sessions) as session:
        ws = api_only.workspace_id
        settings = api_only.settings
        assert (
            await resolve_secret(session, workspace_id=ws, name="A_TOKEN", settings=settings)
            == PLAIN
        )
        try:
            await resolve_secret(session, workspace_id=ws, name="B_TOKEN", settings=settings)
            raise AssertionError("moved ciphertext decrypted")
        except Exception as exc:
            assert type(exc).__name__ == "DecryptionError" and PLAIN not in str(exc)
    await engine.dispose()


async def test_lookup_order_user_then_repo_then_global(api_only: Optio) -> None:
    await put(api_only.client, "TOKEN", "global-value")
    engine = create_engine(api_only.settings.database_url_resolved)
    sessions = session_factory(engine)

    async def lookup(**kw: Any) -> str | None:
        async with transaction(sessions) as session:
            return await resolve_secret(
                session,
                workspace_id=api_only.workspace_id,
                name="TOKEN",
                settings=api_only.settings,
                **kw,
            )

    me = api_only.user_id
    assert await lookup(repo_url=REPO, user_id=me) == "global-value"
    await put(api_only.client, "TOKEN", "repo-value", scope=REPO)
    assert await lookup(repo_url=REPO, user_id=me) == "repo-value"
    assert await lookup(repo_url=REPO + "/") == "repo-value"
    assert await lookup(repo_url="https://github.com/acme/other") == "global-value"
    await put(api_only.client, "TOKEN", "user-value", scope="user")
    assert await lookup(repo_url=REPO, user_id=me) == "user-value"
    assert await lookup(repo_url=REPO, user_id="someone-else") == "repo-value"
    assert await lookup() == "global-value"
    async with transaction(sessions) as session:
        missing = await resolve_secret(
            session, workspace_id=api_only.workspace_id, name="NOPE", settings=api_only.settings
        )
        assert missing is None
    await engine.dispose()


async def test_user_scoped_secrets_are_listed_to_their_owner_only(
    api_only: Optio, people: Callable[..., Any]
) -> None:
    admin2: Person = await people("Second admin", member_of=api_only.workspace_id, role="admin")
    await put(api_only.client, "MINE", "mine-value", scope="user")
    assert (await admin2.client.get("/api/secrets")).json()["secrets"] == []
    mine = (await api_only.client.get("/api/secrets")).json()["secrets"]
    assert [(s["name"], s["userId"]) for s in mine] == [("MINE", api_only.user_id)]
    # Deleting "MINE" in the user scope from another admin touches only their own slot.
    assert (
        await admin2.client.delete("/api/secrets/MINE", params={"scope": "user"})
    ).status_code == 404


async def test_rotate_key_re_encrypts_every_row(api_only: Optio) -> None:
    await put(api_only.client, "ONE", "value-one")
    await put(api_only.client, "TWO", "value-two", scope=REPO)
    settings = api_only.settings.model_copy()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.data_dir / "encryption.key"
    key_file.write_text(settings.encryption_key or "")
    old = secret_key(settings)
    message = await asyncio.to_thread(rotate, settings, new_key=None, key_in_data_dir=True)
    assert "re-encrypted 2 secrets" in message and "new key:" not in message
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    new_value = key_file.read_text()
    assert derive_key(new_value) != old
    engine = create_engine(settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        rotated = settings.model_copy(update={"encryption_key": new_value})
        got = await resolve_secret(
            session, workspace_id=api_only.workspace_id, name="TWO", repo_url=REPO, settings=rotated
        )
        assert got == "value-two"
        try:
            await resolve_secret(
                session, workspace_id=api_only.workspace_id, name="ONE", settings=settings
            )
            raise AssertionError("old key still decrypts")
        except Exception as exc:
            assert type(exc).__name__ == "DecryptionError"
    await engine.dispose()
    # An operator-supplied key that is weak is refused before anything changes.
    try:
        rotate(settings, new_key="changeme", key_in_data_dir=False)
        raise AssertionError("weak key accepted")
    except Exception as exc:
        assert "too weak" in str(exc)
