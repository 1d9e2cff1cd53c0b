"""Microsoft's national clouds: which sign-in host goes with which Graph host, and the scope.

Each cloud is a separate Entra ID and Graph deployment (Graph docs
``deployments.md``): an app registered in one cannot get tokens or call Graph
in another. The app-only token must be requested for ``<Graph origin>/.default``
of the cloud the calls go to (``sdks/national-clouds.md``: any scope containing
the Graph domain must use the national cloud's Graph domain); a token for the
global ``https://graph.microsoft.com`` is refused by ``graph.microsoft.us``.

| cloud | sign-in (``authority_host``) | Graph (``graph_url``) |
| --- | --- | --- |
| global | login.microsoftonline.com | graph.microsoft.com |
| US Government L4 (GCC High) | login.microsoftonline.us | graph.microsoft.us |
| US Government L5 (DoD) | login.microsoftonline.us | dod-graph.microsoft.us |
| China (21Vianet) | login.chinacloudapi.cn | microsoftgraph.chinacloudapi.cn |

(China's sign-in is also reachable as login.partner.microsoftonline.cn.)

Hosts outside this table (a proxy, a test double) are accepted as they are;
a pair of two known hosts from different clouds is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Graph host -> (cloud name, sign-in hosts of that cloud)
GRAPH_CLOUDS: dict[str, tuple[str, frozenset[str]]] = {
    "graph.microsoft.com": ("the global service", frozenset({"login.microsoftonline.com"})),
    "graph.microsoft.us": ("US Government L4", frozenset({"login.microsoftonline.us"})),
    "dod-graph.microsoft.us": ("US Government L5 (DoD)", frozenset({"login.microsoftonline.us"})),
    "microsoftgraph.chinacloudapi.cn": (
        "China (21Vianet)",
        frozenset({"login.chinacloudapi.cn", "login.partner.microsoftonline.cn"}),
    ),
}
_LOGIN_HOSTS = frozenset(h for _, hosts in GRAPH_CLOUDS.values() for h in hosts)


def _origin(url: str, what: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of an https URL; ``ValueError`` naming ``what`` otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{what} must be an https:// URL, got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{what} must not carry a query, fragment or user info: {url!r}")
    return parts.scheme, parts.netloc.lower()


def graph_scope(graph_url: str) -> str:
    """The app-only ``.default`` scope for calls to ``graph_url`` (its origin + ``/.default``)."""
    scheme, netloc = _origin(graph_url, "graph_url")
    return f"{scheme}://{netloc}/.default"


def check_cloud_pair(authority_host: str, graph_url: str) -> None:
    """Refuse a sign-in host and a Graph host of two different known clouds."""
    _origin(authority_host, "authority_host")
    _origin(graph_url, "graph_url")
    login = (urlsplit(authority_host.strip()).hostname or "").lower()
    graph = (urlsplit(graph_url.strip()).hostname or "").lower()
    cloud = GRAPH_CLOUDS.get(graph)
    if cloud is None or login not in _LOGIN_HOSTS:
        return  # an unknown host on either side (a proxy, a double): nothing to compare
    name, logins = cloud
    if login not in logins:
        expected = " or ".join(f"https://{h}" for h in sorted(logins))
        raise ValueError(
            f"authority_host {authority_host!r} signs in to another cloud than graph_url "
            f"{graph_url!r} ({name}); use authority_host {expected} for that Graph"
        )
