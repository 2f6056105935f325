"""Business hours: open or closed, the next opening, and what changes outside the hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from nicobot.config import ConfigError, Settings, load_settings
from nicobot.hours import WEEKDAYS, BusinessHours, describe_when
from nicobot.testing import FAKE_SECRET, make_project

HEADERS = {"Authorization": "", "X-Fake-Secret": FAKE_SECRET}
ZONE = "America/Argentina/Buenos_Aires"  # UTC-3, no daylight saving


def hours(**section: object) -> BusinessHours:
    return BusinessHours.from_settings(
        Settings.model_validate({"bot": {"timezone": ZONE}, "hours": section})
    )


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2026: Monday the 2nd ... Sunday the 8th, in Buenos Aires."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) + timedelta(hours=3)


SHOP = hours(
    monday=["09:00-13:00", "14:00-18:00"],
    tuesday=["09:00-18:00"],
    friday=["09:00-24:00"],
    holidays=["2026-03-03"],
)


def test_open_and_closed():
    assert SHOP.configured
    assert SHOP.is_open(local(2, 9)) and SHOP.is_open(local(2, 17, 59))
    assert not SHOP.is_open(local(2, 13, 30))  # lunch
    assert not SHOP.is_open(local(2, 18))
    assert not SHOP.is_open(local(3, 10))  # a holiday
    assert SHOP.is_open(local(6, 23, 59))
    assert not hours().configured and hours().is_open(local(3, 3))


def test_next_opening_and_last_closing():
    zone = SHOP.zone
    assert SHOP.next_opening(local(2, 13, 30)) == datetime(2026, 3, 2, 14, tzinfo=zone)
    # Monday night: Tuesday is a holiday, so Friday
    assert SHOP.next_opening(local(2, 20)) == datetime(2026, 3, 6, 9, tzinfo=zone)
    assert SHOP.last_closing(local(2, 20)) == datetime(2026, 3, 2, 18, tzinfo=zone)
    assert SHOP.last_closing(local(7, 10)) == datetime(2026, 3, 7, 0, tzinfo=zone)
    assert hours(holidays=[]).next_opening(local(2, 1)) is None


@pytest.mark.parametrize(
    ("moment", "language", "expected"),
    [
        (local(2, 14), "es", "hoy a las 14:00"),
        (local(3, 9), "es", "mañana a las 9:00"),
        (local(6, 9), "es", "el viernes a las 9:00"),
        (local(6, 9), "en", "on Friday at 9:00\u202fAM"),
        (local(13, 9), "es", "el 13 de marzo a las 9:00"),
    ],
)
def test_describe_when(moment, language, expected):
    now = local(2, 10).astimezone(SHOP.zone)
    assert describe_when(moment.astimezone(SHOP.zone), now, language) == expected


def test_the_week_for_the_admin_page():
    week = SHOP.describe_week("es")
    assert week[0] == ("lunes", "09:00-13:00, 14:00-18:00")
    assert week[2] == ("miércoles", "cerrado")
    assert week[4] == ("viernes", "09:00-24:00")


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('monday = ["9 to 5"]', "hours.monday: '9 to 5' is not a range such as 09:00-18:00"),
        ('monday = ["18:00-09:00"]', "hours.monday: '18:00-09:00' ends before it starts"),
        ('holidays = ["25/12"]', "hours.holidays: '25/12' is not a date such as 2026-12-25"),
    ],
)
def test_bad_hours_stop_startup(tmp_path, table, error):
    project = make_project(tmp_path / "p", hours=f"[hours]\n{table}")
    with pytest.raises(ConfigError) as caught:
        load_settings(project, environ={})
    assert error in str(caught.value)


def closed_until_tomorrow(out_of_office: bool = False) -> str:
    """Only tomorrow has hours (09:00-10:00 UTC): the business is closed now."""
    tomorrow = WEEKDAYS[(datetime.now(UTC).weekday() + 1) % 7]
    return f'[hours]\n{tomorrow} = ["09:00-10:00"]\nout_of_office = {str(out_of_office).lower()}'


async def deliver(client, message_id: str, text: str) -> None:
    response = await client.post(
        "/api/webhooks/fake",
        json={"id": message_id, "address": "5491100000001", "text": text},
        headers=HEADERS,
    )
    assert response.status_code == 200


class TestClosed:
    @pytest.fixture
    def nicobot_project(self, tmp_path):
        return make_project(tmp_path / "project", hours=closed_until_tomorrow())

    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return fake_llm.env

    async def test_the_handoff_reply_names_the_next_opening(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        await deliver(nicobot_client, "q1", "What do you sell?")
        await deliver(nicobot_client, "h1", "I want to talk to a person")
        await nicobot_bot.pipeline.wait_idle(20)
        answer, handoff = (m.text for m in fake_channel.sent)
        assert answer == "Echo: What do you sell?"  # the bot still answers
        assert handoff.startswith("Got it, I'll pass you on to a person from our team. ")
        assert handoff.endswith(
            ("a person will write to you tomorrow at 9:00\u202fAM.", "today at 9:00\u202fAM.")
        )

    async def test_the_admin_page_shows_the_hours(self, nicobot_client):
        page = await (await nicobot_client.get("/admin?tab=business")).get_data(as_text=True)
        assert "09:00-10:00" in page
        assert "Now: closed (time zone UTC)." in page


class TestOutOfOffice:
    @pytest.fixture
    def nicobot_project(self, tmp_path):
        return make_project(tmp_path / "project", hours=closed_until_tomorrow(True))

    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return fake_llm.env

    async def test_one_reply_and_the_messages_wait_for_the_opening(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        await deliver(nicobot_client, "o1", "hello?")
        async with asyncio.timeout(20):
            [sent] = await fake_channel.wait_for_sent(1)
        assert sent.text.startswith("Thanks for your message! We're closed now. We open ")
        await deliver(nicobot_client, "o2", "anyone there?")
        for _ in range(400):  # both wait in the inbox, none is being answered
            counts = await nicobot_bot.store.pipeline_counts()
            if counts["turns_pending"] == 2 and not counts["turns_claimed"]:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"the messages did not settle in the inbox: {counts}")
        assert len(fake_channel.sent) == 1
        assert fake_llm.requests == []
        opening = nicobot_bot.gate.hours.next_opening(datetime.now(UTC))
        ready = await nicobot_bot.store.next_turn_at()
        assert ready == pytest.approx(opening.timestamp(), abs=timedelta(days=1).total_seconds())
        assert ready > datetime.now(UTC).timestamp() + 60
