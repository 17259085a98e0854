"""The SSRF policy for transfer callback URLs."""

from __future__ import annotations

import ipaddress

import pytest

from bourse.domain.callbacks import CallbackPolicy, UnsafeCallbackUrl, forbidden_reason, parse_callback_url
from bourse.domain.errors import InvalidInput

POLICY = CallbackPolicy()

REFUSED_ADDRESSES = [
    "http://127.0.0.1/cb",
    "http://127.8.9.10:8080/cb",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.0.1/",
    "http://0.0.0.0/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://localhost/cb",
    "https://LOCALHOST./cb",
    "https://api.localhost/cb",
]

NUMERIC_FORMS = [
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex
    "http://0X7F000001/",
    "http://0177.0.0.1/",  # octal first octet
    "http://0177.0000.0000.0001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://3232235777/",  # 192.168.1.1
    "http://0xa9fea9fe/",  # 169.254.169.254
    "http://256.0.0.1/",
    "http://1.2.3.4.5/",
    "http://example.0x10/",
    "http://example.123/",
    "http://08.8.8.8/",
]

MALFORMED = [
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http:example.com",
    "//example.com/cb",
    "example.com/cb",
    "",
    "http://",
    "http://user:pw@example.com/",
    "http://example.com@127.0.0.1/",
    "http://example.com\\@127.0.0.1/",
    "http://exa mple.com/",
    "http://example.com/\n",
    "http://%31%32%37.0.0.1/",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://example.com:/",
    "http://example.com:80x/",
    "http://[::1/",
    "http://[fe80::1%25eth0]/",
    "http://exämple.com/",
    "http://-bad-.example.com/",
    "http://a..b.example.com/",
    "http://" + "a" * 2048 + ".com/",
]


@pytest.mark.parametrize("url", REFUSED_ADDRESSES)
def test_internal_addresses_are_refused_at_registration(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as info:
        POLICY.check_url(url)
    assert isinstance(info.value, InvalidInput)
    assert info.value.details["field"] == "callbackUrl"


@pytest.mark.parametrize("url", NUMERIC_FORMS)
def test_numeric_host_spellings_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.check_url(url)


@pytest.mark.parametrize("url", NUMERIC_FORMS)
def test_numeric_host_spellings_are_refused_even_when_allowlisted(url: str) -> None:
    policy = CallbackPolicy(["127.0.0.1", "169.254.169.254", "192.168.1.1", "localhost"])
    with pytest.raises(UnsafeCallbackUrl):
        policy.check_url(url)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/cb",
        "https://8.8.8.8:8443/hook?x=1",
        "https://[2606:4700:4700::1111]/cb",
        "https://hooks.example.com/transfers",
        "HTTPS://Hooks.Example.COM./x",
        "http://a-b.c-d.example/",
        "http://1e100.net/",
        "http://[64:ff9b::808:808]/",  # NAT64 of 8.8.8.8
    ],
)
def test_public_urls_are_accepted(url: str) -> None:
    POLICY.check_url(url)


def test_parsed_target_keeps_host_port_and_path() -> None:
    target = parse_callback_url("HTTPS://Hooks.Example.COM./a/b?c=1#frag")
    assert (target.scheme, target.host, target.port, target.target) == (
        "https",
        "hooks.example.com",
        443,
        "/a/b?c=1",
    )
    assert target.host_header == "hooks.example.com"
    assert target.url_for(ipaddress.ip_address("93.184.216.34")) == "https://93.184.216.34:443/a/b?c=1"
    v6 = parse_callback_url("http://[2606:4700:4700::1111]:8080")
    assert v6.host_header == "[2606:4700:4700::1111]:8080"
    assert v6.target == "/"
    assert v6.url_for(v6.ip) == "http://[2606:4700:4700::1111]:8080/"  # type: ignore[arg-type]


def test_allowlist_permits_the_listed_host_and_port_only() -> None:
    policy = CallbackPolicy(["127.0.0.1:8080", "[::1]:9000", "hooks.internal"])
    policy.check_url("http://127.0.0.1:8080/cb")
    policy.check_url("http://[::1]:9000/cb")
    policy.check_url("https://hooks.internal:1234/cb")
    with pytest.raises(UnsafeCallbackUrl):
        policy.check_url("http://127.0.0.1:8081/cb")
    with pytest.raises(UnsafeCallbackUrl):
        policy.check_url("http://127.0.0.2:8080/cb")
    with pytest.raises(UnsafeCallbackUrl):
        policy.check_url("http://[::1]:9001/cb")


def test_bad_allowlist_entries_fail_at_start() -> None:
    for entry in ["0x7f000001:80", "127.1", "host:99999", "[::1"]:
        with pytest.raises(ValueError):
            CallbackPolicy([entry])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.20.0.5",
        "192.168.0.10",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::abcd",
        "::ffff:192.168.0.1",
        "ff05::2",
        "224.0.0.251",
    ],
)
def test_resolution_to_an_internal_address_is_refused_at_delivery(address: str) -> None:
    target = POLICY.check_url("https://hooks.example.com/cb")
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.pick_address(target, [address])


def test_one_bad_address_in_the_answer_refuses_the_whole_answer() -> None:
    target = POLICY.check_url("https://hooks.example.com/cb")
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.pick_address(target, ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.pick_address(target, [])
    with pytest.raises(UnsafeCallbackUrl):
        POLICY.pick_address(target, ["fe80::1%eth0"])


def test_delivery_connects_to_the_first_checked_address() -> None:
    target = POLICY.check_url("https://hooks.example.com/cb")
    assert str(POLICY.pick_address(target, ["93.184.216.34", "2606:2800:220:1::1"])) == "93.184.216.34"


def test_allowlisted_name_is_trusted_whatever_it_resolves_to() -> None:
    policy = CallbackPolicy(["hooks.internal:8443"])
    target = policy.check_url("https://hooks.internal:8443/cb")
    assert str(policy.pick_address(target, ["10.0.0.7"])) == "10.0.0.7"
    other = policy.check_url("https://hooks.internal:9443/cb")
    with pytest.raises(UnsafeCallbackUrl):
        policy.pick_address(other, ["10.0.0.7"])


def test_public_addresses_have_no_reason_to_refuse() -> None:
    for text in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]:
        assert forbidden_reason(ipaddress.ip_address(text)) is None
