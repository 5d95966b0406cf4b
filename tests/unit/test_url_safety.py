"""tasks.url_safety without the network: which addresses are refused, how a pinned target keeps the
original host for the Host header and TLS, and how URLs are shown."""

from __future__ import annotations

import ipaddress

import pytest

from tasks import url_safety


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("100.64.0.1", "not publicly routable"),
    ("::ffff:169.254.169.254", "link-local"),
])
def test_non_public_addresses_are_named(address: str, kind: str) -> None:
    assert kind in (url_safety.refusal(ipaddress.ip_address(address)) or "")


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert url_safety.refusal(ipaddress.ip_address(address)) is None


def test_pinned_https_target_keeps_the_host_name_for_sni_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(url_safety, "resolve", lambda host, port: ["93.184.215.14", "2606:2800::1"])
    t = url_safety.pin("https://hooks.example.org:8443/in?x=1", allow_private=False)
    assert str(t.url) == "https://93.184.215.14:8443/in?x=1"
    assert t.headers == {"Host": "hooks.example.org:8443"} and t.extensions == {"sni_hostname": "hooks.example.org"}


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(url_safety, "resolve", lambda host, port: ["93.184.215.14", "192.168.7.7"])
    with pytest.raises(url_safety.UnsafeUrl, match="192.168.7.7"):
        url_safety.pin("https://hooks.example.org/in", allow_private=False)
    assert url_safety.pin("https://hooks.example.org/in", allow_private=True).url.host == "93.184.215.14"


def test_unresolvable_host_is_refused_at_delivery_not_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    monkeypatch.setattr(url_safety, "resolve", fail)
    url_safety.check_url("https://not-yet.example.org/in", allow_private=False, resolve_names=True)
    with pytest.raises(url_safety.UnsafeUrl, match="does not resolve"):
        url_safety.pin("https://not-yet.example.org/in", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.org/", "http:///path", "https://u:p@example.org/", "not a url",
                                 "https://user@example.org/"])
def test_malformed_or_credential_urls_are_refused(url: str) -> None:
    with pytest.raises(url_safety.UnsafeUrl):
        url_safety.check_url(url, allow_private=True)


def test_redact_drops_credentials_and_masks_query_values() -> None:
    assert url_safety.redact("https://u:pw@h.example/p?token=abc&x=1") == "https://h.example/p?token=***&x=***"
    assert url_safety.redact("https://h.example/p") == "https://h.example/p"
    assert url_safety.scrub("ConnectError for https://u:pw@h.example/p (pw)", "https://u:pw@h.example/p") \
        == "ConnectError for https://h.example/p (***)"
