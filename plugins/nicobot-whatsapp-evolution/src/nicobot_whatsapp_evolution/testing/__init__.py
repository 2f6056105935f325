"""Test support for the WhatsApp plugin: a fake Evolution API gateway.

Not used by the channel itself; import it from tests, or run it as a server with
``python -m nicobot_whatsapp_evolution.testing.fake_gateway``.
"""

from .fake_gateway import FakeGateway, Instance, qr_png
from .process import GatewayProcess

__all__ = ["FakeGateway", "GatewayProcess", "Instance", "qr_png"]
