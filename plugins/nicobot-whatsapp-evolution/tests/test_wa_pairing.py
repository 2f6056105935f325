"""While pairing, the status carries the gateway's current QR, however often it rotates."""

from __future__ import annotations

import asyncio

from evo_support import INSTANCE, MakeChannel
from nicobot_whatsapp_evolution.testing import FakeGateway


async def test_the_status_follows_the_rotating_qr(make_channel: MakeChannel, fake: FakeGateway):
    channel = make_channel().channel
    first = await channel.connect()
    assert first.state in ("scanning", "waiting_qr")
    codes = []
    for _ in range(3):
        await asyncio.to_thread(fake.rotate_qr, INSTANCE)
        status = await channel.get_status()  # no webhook reached this process
        assert status.state == "scanning"
        codes.append(status.qr_code)
    instance = fake.instances[INSTANCE]
    assert codes[-1] == instance.qr_code and len(set(codes)) == 3
    assert status.extra["qr_count"] == instance.qr_count
    await asyncio.to_thread(fake.refuse, INSTANCE)
    after = await channel.get_status()
    assert not after.connected and after.qr_code is None
