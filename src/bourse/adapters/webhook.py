"""Outbound HTTP for transfer callbacks, pinned to an address the policy checked.

The request goes to the checked IP itself, with the original name in the Host
header and in TLS SNI (so the certificate is verified against the name). A
second DNS lookup never happens, which is what defeats DNS rebinding. No
redirects, no proxies from the environment, no connection reuse across names,
short timeouts, and the response body is never read.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from functools import cache

import httpx

from bourse import __version__
from bourse.domain.callbacks import CallbackTarget, IPAddress, SendOutcome

USER_AGENT = f"bourse-callbacks/{__version__}"


@cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


class HttpxCallbackSender:
    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        timeout: float = 5.0,
        total_timeout: float = 10.0,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._total = total_timeout
        self._verify = verify

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # an HTTP(S)_PROXY would resolve the name again, on its side
            timeout=self._timeout,
            verify=_tls_context() if self._verify is True else self._verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def post(self, target: CallbackTarget, ip: IPAddress, body: bytes) -> SendOutcome:
        headers = {"Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" and target.ip is None else {}
        try:
            async with asyncio.timeout(self._total), self._client() as client:
                request = client.build_request(
                    "POST", target.url_for(ip), content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                await response.aclose()
                return SendOutcome(response.status_code)
        except TimeoutError:
            return SendOutcome(None, f"timed out after {self._total:g}s")
        except httpx.TimeoutException as e:
            return SendOutcome(None, f"timeout: {type(e).__name__}")
        except httpx.HTTPError as e:
            return SendOutcome(None, f"{type(e).__name__}: {e}"[:500])
        except (OSError, ssl.SSLError) as e:
            return SendOutcome(None, f"{type(e).__name__}: {e}"[:500])


class SystemResolver:
    """DNS through the operating system (``getaddrinfo``), without blocking the event loop."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise OSError(f"resolving {host} timed out") from None
        addresses: list[str] = []
        for *_, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        return addresses
