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


async def test_looking_at_the_status_while_no_qr_comes_asks_the_gateway_no_more(
    make_channel: MakeChannel, fake: FakeGateway
):
    """A gateway that cannot reach WhatsApp never makes a QR, and each ``GET
    /instance/connect`` may start one more dialing loop: pairing asks once, and the looks
    that follow within the wait do not ask again."""
    fake.not_ready_connects = 100
    channel = make_channel().channel
    assert (await channel.connect()).state == "scanning"
    for _ in range(5):
        status = await channel.get_status()
        assert status.state == "scanning" and status.qr_code is None
    connects = [r for r in fake.requests if r[1].startswith("/instance/connect/")]
    assert connects == [("GET", f"/instance/connect/{INSTANCE}")]
