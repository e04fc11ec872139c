"""Which client a request comes from, for rate limiting: the connection's peer, unless the
peer is a configured trusted proxy (GATEWAY_TRUSTED_PROXIES); then X-Forwarded-For is read
from the right, past every trusted proxy, to the first address that is not one. Entries
left of that are the client's own claims and are ignored. IPv6 clients are keyed by their
/64 (one host usually holds a whole /64)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies]

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted)

    def of(self, peer: str | None, forwarded_for: str | None) -> str:
        """The rate-limit key of a request from `peer` carrying `forwarded_for`."""
        address = _address(peer) if peer else None
        if address is None:
            return peer or "?"
        if not forwarded_for or not self.trusted or not self._trusted(address):
            return key(address)
        for hop in reversed(forwarded_for.split(",")):
            claimed = _address(hop)
            if claimed is None:
                break  # malformed: the nearest trusted proxy stands for the client
            address = claimed
            if not self._trusted(address):
                break
        return key(address)
