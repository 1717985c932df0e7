"""One webhook attempt reads the receiver's status and headers, never its body: a receiver that answers with an
endless body costs the events worker nothing (a tenant registers its own endpoints)."""

from __future__ import annotations

import asyncio

from temporalio.testing import ActivityEnvironment

from activities.webhooks import WebhookSender
from models.events import SendRequest
from tests.api_support import api_settings

CHUNK = b"x" * 65536
MOST = 1 << 30  # the receiver stops by itself past this


async def test_a_receiver_that_streams_an_endless_body_is_answered_by_its_status_alone(tmp_path):
    written = 0
    closed = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while written < MOST:
                writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                await writer.drain()
                written += len(CHUNK)
        except ConnectionError:
            pass
        finally:
            writer.close()
            closed.set()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = api_settings("127.0.0.1:9", tmp_path, ATELIER_WEBHOOK_ALLOW_PRIVATE=True)
    request = SendRequest(
        delivery_id="run~hook-1", tenant="local", url=f"http://127.0.0.1:{port}/", payload={}, attempt=1
    )
    async with server:
        sent = await ActivityEnvironment().run(WebhookSender(settings).send_webhook, request)
        await asyncio.wait_for(closed.wait(), 30)
    assert sent.status == 200 and sent.error is None, sent
    assert written < 64 * len(CHUNK), f"the sender read {written} bytes of the receiver's body"
