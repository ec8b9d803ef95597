"""WorkspaceMasks: decrypted once per workspace, reloaded when its secrets change."""

from __future__ import annotations

import pytest

import store.masking
from core.settings import Settings
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.masking import WorkspaceMasks
from store.secrets import delete_secret, secret_key, upsert_secret


async def test_values_are_cached_until_the_workspace_secrets_change(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, encryption_key="1" * 64)
    key = secret_key(settings)
    loads: list[str] = []
    real = store.masking.workspace_values

    async def counted(session, *, workspace_id, settings):  # type: ignore[no-untyped-def]
        loads.append(workspace_id)
        return await real(session, workspace_id=workspace_id, settings=settings)

    monkeypatch.setattr(store.masking, "workspace_values", counted)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    masks = WorkspaceMasks(settings)
    try:
        async with transaction(sessions) as session:
            admin = await bootstrap_local_admin(session)
        ws, user = admin.workspace_id, admin.user_id

        async def put(name: str, value: str, scope: str | None = None) -> None:
            async with transaction(sessions) as session:
                await upsert_secret(session, key=key, workspace_id=ws, name=name, value=value,
                                    scope=scope, user_id=user)  # fmt: skip

        async def mask(text: str) -> str:
            async with sessions() as session:
                return (await masks.redactor(session, workspace_id=ws)).text(text)

        await put("A", "first-value-aaaa")
        await put("B", "own-value-bbbbbb", scope="user")
        assert await mask("a first-value-aaaa b own-value-bbbbbb") == "a *** b ***"
        assert await mask("first-value-aaaa again") == "*** again"
        assert loads == [ws]  # the second use decrypted nothing

        await put("A", "second-value-cccc")  # replaced: the new value is masked at once
        assert await mask("second-value-cccc") == "***"
        await put("C", "third-value-dddd")
        assert await mask("third-value-dddd") == "***"
        async with transaction(sessions) as session:
            await delete_secret(session, workspace_id=ws, name="C", scope=None, user_id=user)
        assert await mask("third-value-dddd own-value-bbbbbb") == "third-value-dddd ***"
        assert len(loads) == 4
    finally:
        await engine.dispose()
