"""A minimal HTTP/2 server over TLS (ALPN ``h2``) on the ``h2`` library, for the APNs
tests: it records each request and answers as its ``respond`` callable says."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl
import threading
from collections.abc import Callable
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RequestReceived, StreamEnded


@dataclasses.dataclass
class H2Request:
    headers: dict[str, str]
    body: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[H2Request], tuple[int, dict[str, str], bytes]]


class H2Server:
    def __init__(self, tls: ssl.SSLContext, respond: Responder) -> None:
        tls.set_alpn_protocols(["h2"])
        self.tls = tls
        self.respond = respond
        self.requests: list[H2Request] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the HTTP/2 test server did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = H2Connection(config=H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, H2Request] = {}
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, RequestReceived):
                        streams[event.stream_id] = H2Request(dict(event.headers))  # type: ignore[arg-type]
                    elif isinstance(event, DataReceived):
                        streams[event.stream_id].body += event.data
                        conn.acknowledge_received_data(len(event.data), event.stream_id)
                    elif isinstance(event, StreamEnded):
                        request = streams.pop(event.stream_id)
                        self.requests.append(request)
                        status, headers, body = self.respond(request)
                        conn.send_headers(
                            event.stream_id,
                            [
                                (":status", str(status)),
                                ("content-length", str(len(body))),
                                *headers.items(),
                            ],
                            end_stream=not body,
                        )
                        if body:
                            conn.send_data(event.stream_id, body, end_stream=True)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
