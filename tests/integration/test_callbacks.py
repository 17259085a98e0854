"""Transfer callbacks end to end: a local HTTP receiver, the delivery job, the SSRF checks."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bourse.adapters.webhook import HttpxCallbackSender
from bourse.api.app import create_app
from bourse.bootstrap import Container, build
from bourse.domain.callbacks import CallbackPolicy, CallbackTarget, IPAddress, SendOutcome
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Principal, Role
from bourse.domain.outbox import DeliveryState, RetryPolicy
from bourse.domain.transfers import transfer_view
from bourse.domain.values import UserId
from bourse.service.callbacks import CallbackService, DeliverySettings
from bourse.service.context import RequestMeta
from bourse.service.transfers import TransferService
from tests.conftest import FAST_HASHER, FakeClock, make_settings

OPS = Principal.of(UserId(1), "ops", frozenset({Role.ADMIN}))
META = RequestMeta("test", "127.0.0.1")
RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=1, max_delay_seconds=60)


# --- a local receiver ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    host: str
    content_type: str
    body: dict


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            received.append(Received(self.path, self.headers["Host"], self.headers["Content-Type"], body))
            if self.path.startswith("/fail"):
                self.send_response(500)
            elif self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/target")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(server.server_port, received)
    finally:
        server.shutdown()
        server.server_close()


# --- fakes at the ports ----------------------------------------------------------------------


class FakeResolver:
    """DNS under the test's control: a public-looking name may answer with any address."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: name does not resolve")
        return self.answers[host]


class RecordingSender:
    def __init__(self) -> None:
        self.calls: list[tuple[CallbackTarget, IPAddress]] = []

    async def post(self, target: CallbackTarget, ip: IPAddress, body: bytes) -> SendOutcome:
        self.calls.append((target, ip))
        return SendOutcome(204)


@dataclass
class Wiring:
    transfers: TransferService
    callbacks: CallbackService
    clock: FakeClock
    account: str


async def _wiring(
    container: Container,
    clock: FakeClock,
    policy: CallbackPolicy,
    resolver: object = None,
    sender: object = None,
) -> Wiring:
    await container.ledger.create_asset("USDT", "Tether", 2, "Crypto")
    account = str((await container.identity.create_user("alice", "alice-pass-123")).account.account_id)
    return Wiring(
        TransferService(container.uow, clock, policy),
        CallbackService(
            container.uow,
            clock,
            policy,
            resolver or FakeResolver({}),  # type: ignore[arg-type]
            sender or HttpxCallbackSender(),
            DeliverySettings(retry=RETRY),
        ),  # type: ignore[arg-type]
        clock,
        account,
    )


@pytest.fixture
async def wired(container: Container, clock: FakeClock, receiver: Receiver) -> Wiring:
    return await _wiring(container, clock, CallbackPolicy([f"127.0.0.1:{receiver.port}"]))


# --- delivery --------------------------------------------------------------------------------


async def test_every_status_change_is_posted_with_the_transfer_json(
    wired: Wiring, receiver: Receiver
) -> None:
    w = wired
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "50", receiver.url("/dep"), META)
    wd = await w.transfers.withdraw(OPS, w.account, "wd", "USDT", "20", receiver.url("/wd"), META)
    assert await w.callbacks.deliver_due() == 2
    assert sorted(receiver.paths()) == ["/dep", "/wd"]
    by_path = {r.path: r for r in receiver.requests}
    assert by_path["/dep"].body == transfer_view(dep)
    assert by_path["/dep"].body["status"] == "Completed"
    assert by_path["/wd"].body == transfer_view(wd)
    assert by_path["/wd"].body["status"] == "Pending"
    assert by_path["/wd"].host == f"127.0.0.1:{receiver.port}"
    assert by_path["/wd"].content_type == "application/json"

    w.clock.advance(seconds=1)
    confirmed = await w.transfers.confirm(OPS, w.account, wd.transfer_id, None, META)
    assert await w.callbacks.deliver_due() == 1
    assert receiver.requests[-1].path == "/wd"
    assert receiver.requests[-1].body == transfer_view(confirmed)
    assert receiver.requests[-1].body["status"] == "Completed"
    assert receiver.requests[-1].body["updatedAt"] > receiver.requests[-1].body["createdAt"]

    # Repeating the confirmation changes no status, so nothing more is sent.
    await w.transfers.confirm(OPS, w.account, wd.transfer_id, None, META)
    assert await w.callbacks.deliver_due() == 0

    deliveries = await w.callbacks.deliveries(wd.transfer_id)
    assert [d.state for d in deliveries] == [DeliveryState.DELIVERED, DeliveryState.DELIVERED]
    for d in deliveries:
        (attempt,) = d.attempts
        assert (attempt.attempt, attempt.status_code, attempt.error, attempt.address) == (
            1,
            200,
            None,
            "127.0.0.1",
        )
        assert attempt.duration_ms >= 0
        assert attempt.attempted_at is not None


async def test_settlement_may_name_a_new_callback_url(wired: Wiring, receiver: Receiver) -> None:
    w = wired
    await w.transfers.deposit(OPS, w.account, "dep", "USDT", "50", None, META)
    wd = await w.transfers.withdraw(OPS, w.account, "wd", "USDT", "20", None, META)
    assert await w.callbacks.deliver_due() == 0
    await w.transfers.cancel(OPS, w.account, wd.transfer_id, receiver.url("/cancelled"), META)
    assert await w.callbacks.deliver_due() == 1
    assert [(r.path, r.body["status"]) for r in receiver.requests] == [("/cancelled", "Cancelled")]


async def test_failing_endpoint_is_retried_with_backoff_then_given_up(
    wired: Wiring, receiver: Receiver
) -> None:
    w = wired
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", receiver.url("/fail"), META)
    assert await w.callbacks.deliver_due() == 1
    assert await w.callbacks.deliver_due() == 0  # not due before the backoff
    w.clock.advance(seconds=0.9)
    assert await w.callbacks.deliver_due() == 0
    w.clock.advance(seconds=0.1)  # 1 s after the first failure
    assert await w.callbacks.deliver_due() == 1
    w.clock.advance(seconds=1.5)
    assert await w.callbacks.deliver_due() == 0
    w.clock.advance(seconds=0.5)  # 2 s after the second
    assert await w.callbacks.deliver_due() == 1
    w.clock.advance(hours=1)
    assert await w.callbacks.deliver_due() == 0  # given up after max_attempts
    assert receiver.paths() == ["/fail"] * 3

    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    assert delivery.state is DeliveryState.FAILED
    assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 500), (2, 500), (3, 500)]
    times = [a.attempted_at for a in delivery.attempts]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [1.0, 2.0]
    assert delivery.last_error == "HTTP 500"


async def test_a_later_status_change_waits_for_the_earlier_one(wired: Wiring, receiver: Receiver) -> None:
    w = wired
    await w.transfers.deposit(OPS, w.account, "dep", "USDT", "50", None, META)
    wd = await w.transfers.withdraw(OPS, w.account, "wd", "USDT", "20", receiver.url("/fail"), META)
    await w.transfers.confirm(OPS, w.account, wd.transfer_id, receiver.url("/ok"), META)
    for _ in range(3):
        assert await w.callbacks.deliver_due() == 1
        w.clock.advance(minutes=5)
    assert await w.callbacks.deliver_due() == 1
    assert [(r.path, r.body["status"]) for r in receiver.requests] == [("/fail", "Pending")] * 3 + [
        ("/ok", "Completed")
    ]


async def test_a_redirect_is_not_followed(wired: Wiring, receiver: Receiver) -> None:
    w = wired
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", receiver.url("/redirect"), META)
    assert await w.callbacks.deliver_due() == 1
    assert receiver.paths() == ["/redirect"]
    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    assert delivery.attempts[0].status_code == 302
    assert delivery.state is DeliveryState.PENDING  # a failed attempt, retried later like any other


async def test_unreachable_endpoint_records_the_error(
    container: Container, clock: FakeClock, receiver: Receiver
) -> None:
    # A port nobody listens on (the receiver's port, once closed, would race with reuse).
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = await _wiring(container, clock, CallbackPolicy([f"127.0.0.1:{port}"]))
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", f"http://127.0.0.1:{port}/x", META)
    assert await w.callbacks.deliver_due() == 1
    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    (attempt,) = delivery.attempts
    assert attempt.status_code is None
    assert "ConnectError" in (attempt.error or "")
    assert delivery.state is DeliveryState.PENDING


async def test_delivery_connects_to_the_checked_address_with_the_original_host(
    container: Container, clock: FakeClock, receiver: Receiver
) -> None:
    resolver = FakeResolver({"callback.test": ["127.0.0.1"]})
    w = await _wiring(container, clock, CallbackPolicy([f"callback.test:{receiver.port}"]), resolver)
    await w.transfers.deposit(
        OPS, w.account, "dep", "USDT", "5", receiver.url("/named", "callback.test"), META
    )
    assert await w.callbacks.deliver_due() == 1
    assert [(r.path, r.host) for r in receiver.requests] == [("/named", f"callback.test:{receiver.port}")]
    assert resolver.lookups == ["callback.test"]  # one lookup, then the checked address is used


# --- SSRF: refused at registration and again at delivery --------------------------------------

UNSAFE = [
    "http://127.0.0.1:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://192.168.1.1/hook",
    "http://2130706433:{port}/hook",
    "http://0x7f000001:{port}/hook",
    "http://0177.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
]


@pytest.mark.parametrize("url", UNSAFE)
async def test_unsafe_urls_are_refused_at_registration(
    container: Container, clock: FakeClock, receiver: Receiver, url: str
) -> None:
    w = await _wiring(container, clock, CallbackPolicy())
    with pytest.raises(InvalidInput):
        await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", url.format(port=receiver.port), META)
    assert await w.transfers.list_for_account(OPS, w.account) == []


@pytest.mark.parametrize("url", UNSAFE)
async def test_unsafe_urls_in_the_outbox_are_refused_at_delivery(
    container: Container, clock: FakeClock, receiver: Receiver, url: str
) -> None:
    # Registered while the operator allowed it (or by an older version): checked again when sent.
    sender = RecordingSender()
    w = await _wiring(container, clock, CallbackPolicy(), sender=sender)
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", None, META)
    async with container.uow() as uow:
        await uow.callbacks.enqueue(dep.transfer_id, url.format(port=receiver.port), "{}", clock.now())
        await uow.commit()
    assert await w.callbacks.deliver_due() == 1
    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    assert delivery.state is DeliveryState.FAILED  # the URL itself is refused: no retries
    (attempt,) = delivery.attempts
    assert attempt.error is not None and attempt.error.startswith("refused")
    assert attempt.address is None
    assert sender.calls == []
    assert receiver.requests == []


async def test_allowlist_removed_after_registration_refuses_delivery(
    container: Container, clock: FakeClock, receiver: Receiver
) -> None:
    allowing = await _wiring(container, clock, CallbackPolicy([f"127.0.0.1:{receiver.port}"]))
    dep = await allowing.transfers.deposit(OPS, allowing.account, "dep", "USDT", "5", receiver.url(), META)
    strict = CallbackService(container.uow, clock, CallbackPolicy(), FakeResolver({}), HttpxCallbackSender())
    assert await strict.deliver_due() == 1
    assert receiver.requests == []
    (delivery,) = await strict.deliveries(dep.transfer_id)
    assert delivery.state is DeliveryState.FAILED


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["10.0.0.1"],
        ["169.254.169.254"],
        ["192.168.0.10"],
        ["172.16.5.4"],
        ["100.64.0.1"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1"],
        ["::ffff:127.0.0.1"],
        ["0.0.0.0"],
        ["93.184.216.34", "10.0.0.1"],
    ],
)
async def test_a_public_name_resolving_to_an_internal_address_is_refused_at_delivery(
    container: Container, clock: FakeClock, answer: list[str]
) -> None:
    resolver = FakeResolver({"hooks.example.com": answer})
    sender = RecordingSender()
    w = await _wiring(container, clock, CallbackPolicy(), resolver, sender)
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", "https://hooks.example.com/cb", META)
    assert await w.callbacks.deliver_due() == 1
    assert sender.calls == []
    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    (attempt,) = delivery.attempts
    assert attempt.error is not None and attempt.error.startswith("refused")
    # DNS may change back: retried with backoff like any failure, and checked again each time.
    assert delivery.state is DeliveryState.PENDING


async def test_a_public_answer_is_posted_to_that_address_only(container: Container, clock: FakeClock) -> None:
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34"]})
    sender = RecordingSender()
    w = await _wiring(container, clock, CallbackPolicy(), resolver, sender)
    await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", "https://hooks.example.com/cb", META)
    assert await w.callbacks.deliver_due() == 1
    ((target, ip),) = sender.calls
    assert (target.host, target.port, str(ip)) == ("hooks.example.com", 443, "93.184.216.34")


async def test_unresolvable_name_is_retried(container: Container, clock: FakeClock) -> None:
    w = await _wiring(container, clock, CallbackPolicy(), FakeResolver({}), RecordingSender())
    dep = await w.transfers.deposit(OPS, w.account, "dep", "USDT", "5", "https://gone.example.com/cb", META)
    assert await w.callbacks.deliver_due() == 1
    (delivery,) = await w.callbacks.deliveries(dep.transfer_id)
    assert delivery.attempts[0].error is not None and delivery.attempts[0].error.startswith("dns:")
    assert delivery.state is DeliveryState.PENDING


# --- the background job ----------------------------------------------------------------------


@pytest.fixture
async def jobs_container(db_url: str, clock: FakeClock, receiver: Receiver) -> AsyncIterator[Container]:
    settings = make_settings(callback_allowlist=(f"127.0.0.1:{receiver.port}",), background_jobs=True)
    c = build(settings, db_url, hasher=FAST_HASHER, clock=clock)
    yield c
    await c.aclose()


async def test_the_app_lifespan_runs_the_delivery_job(jobs_container: Container, receiver: Receiver) -> None:
    c = jobs_container
    await c.ledger.create_asset("USDT", "Tether", 2, "Crypto")
    account = str((await c.identity.create_user("alice", "alice-pass-123")).account.account_id)
    app = create_app(c, dispose_on_shutdown=False)
    async with app.router.lifespan_context(app):
        await c.transfers.deposit(OPS, account, "dep", "USDT", "5", receiver.url("/job"), META)
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.05)
    assert receiver.paths() == ["/job"]
    assert receiver.requests[0].body["status"] == "Completed"


async def test_no_job_runs_when_background_jobs_are_off(
    db_url: str, clock: FakeClock, receiver: Receiver
) -> None:
    settings = make_settings(callback_allowlist=(f"127.0.0.1:{receiver.port}",), background_jobs=False)
    c = build(settings, db_url, hasher=FAST_HASHER, clock=clock)
    try:
        await c.ledger.create_asset("USDT", "Tether", 2, "Crypto")
        account = str((await c.identity.create_user("alice", "alice-pass-123")).account.account_id)
        app = create_app(c, dispose_on_shutdown=False)
        async with app.router.lifespan_context(app):
            await c.transfers.deposit(OPS, account, "dep", "USDT", "5", receiver.url("/job"), META)
            await asyncio.sleep(1.2)
        assert receiver.requests == []
        assert await c.callbacks.deliver_due() == 1
        assert receiver.paths() == ["/job"]
    finally:
        await c.aclose()
