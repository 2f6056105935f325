"""register_stores: ``[store] backend`` picks a plugin's store by name."""

from __future__ import annotations

from nicobot import hookimpl
from nicobot.bot import Bot
from nicobot.config import load_settings
from nicobot.plugins import make_plugin_manager
from nicobot.store.sqlite import SQLiteStore


class CopyStore(SQLiteStore):
    name = "copy"


class CopyStorePlugin:
    @hookimpl
    def register_stores(self):
        return [CopyStore]


async def test_hook_register_stores(tmp_path):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(CopyStorePlugin(), name="copy-store")
    bot = Bot(load_settings(tmp_path, environ={"NICOBOT_STORE__BACKEND": "copy"}), pm)
    assert type(bot.store) is CopyStore
    await bot.store.open()
    try:
        session, created = await bot.store.get_or_create_session("simulator", "5550001")
        assert created and await bot.store.get_session(session.id) is not None
    finally:
        await bot.store.close()
