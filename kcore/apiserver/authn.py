"""Request authentication: who is calling, from a client certificate or a bearer token.

Sources, in Kubernetes' order: a client certificate verified by the cluster CA, then a
bearer token (the admin token, a node token, the join token, a ServiceAccount JWT).
No credentials at all means anonymous (``None``); credentials that are present but
wrong raise :class:`AuthenticationError` (HTTP 401) and never fall back to anonymous,
so a typo in a token cannot silently downgrade a caller.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kcore.apiserver.pki import ADMIN_USER, MASTERS_GROUP, ClusterPKI, signed_by
from kcore.log import get_logger

log = get_logger("authn")

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
BOOTSTRAP_USER = "system:bootstrap:kcore"
SA_USER_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
NODE_TOKEN_PREFIX = "kcore-node:"
JWT_ALGORITHM = "ES256"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


class AuthenticationError(Exception):
    """Credentials were presented but are not valid; the API answers 401."""


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) identity, as Kubernetes' user.Info."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_anonymous(self) -> bool:
        return self.name == ANONYMOUS_USER


ANONYMOUS = UserInfo(ANONYMOUS_USER, (UNAUTHENTICATED,))


def service_account_username(namespace: str, name: str) -> str:
    """``system:serviceaccount:<ns>:<name>``, the user a ServiceAccount acts as."""
    return f"{SA_USER_PREFIX}{namespace}:{name}"


def parse_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a ServiceAccount user name, or None for other users."""
    if not username.startswith(SA_USER_PREFIX):
        return None
    rest = username[len(SA_USER_PREFIX) :]
    namespace, sep, name = rest.partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def node_name_of(user: UserInfo) -> str | None:
    """The node a user acts for (``system:node:<name>`` in ``system:nodes``), else None."""
    if NODES_GROUP in user.groups and user.name.startswith(NODE_USER_PREFIX):
        name = user.name[len(NODE_USER_PREFIX) :]
        return name or None
    return None


def node_token(join_token: str, node_name: str) -> str:
    """The bearer token a node uses, derived from the join token.

    Derivation (HMAC-SHA256 keyed by the join token) means the server stores nothing
    per node, and a node's token reveals neither the join token nor other nodes' tokens.
    """
    digest = hmac.new(join_token.encode(), node_name.encode(), hashlib.sha256).hexdigest()
    return f"{NODE_TOKEN_PREFIX}{node_name}:{digest}"


def sign_service_account_token(
    private_key: ec.EllipticCurvePrivateKey,
    namespace: str,
    name: str,
    uid: str,
    *,
    issuer: str = DEFAULT_ISSUER,
    audiences: list[str] | tuple[str, ...] = DEFAULT_AUDIENCES,
    expiration_seconds: int = 3600,
    bound_pod: Mapping[str, str] | None = None,
    now: float | None = None,
) -> str:
    """A ServiceAccount JWT with Kubernetes' claims (``bound_pod``: ``{"name", "uid"}``)."""
    issued = int(now if now is not None else time.time())
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
    if bound_pod is not None:
        private["pod"] = {"name": bound_pod["name"], "uid": bound_pod.get("uid", "")}
    claims = {
        "iss": issuer,
        "sub": service_account_username(namespace, name),
        "aud": list(audiences),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(expiration_seconds),
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
    }
    return jwt.encode(claims, private_key, algorithm=JWT_ALGORITHM)


# (namespace, name) -> the ServiceAccount's uid, or None when it does not exist
ServiceAccountLookup = Callable[[str, str], str | None]
# (namespace, name) -> the Pod's uid, or None when it does not exist
PodLookup = Callable[[str, str], str | None]


class Authenticator:
    """Turns a request's TLS peer certificate and Authorization header into a UserInfo."""

    def __init__(
        self,
        pki: ClusterPKI,
        *,
        service_account_lookup: ServiceAccountLookup | None = None,
        pod_lookup: PodLookup | None = None,
        issuer: str = DEFAULT_ISSUER,
        audiences: list[str] | tuple[str, ...] = DEFAULT_AUDIENCES,
    ) -> None:
        self._pki = pki
        self._ca_cert = pki.ca_cert
        self._sa_private_key = pki.sa_private_key
        self._sa_public_key = pki.sa_public_key
        self._admin_token = pki.admin_token
        self._join_token = pki.join_token
        self._sa_lookup = service_account_lookup
        self._pod_lookup = pod_lookup
        self.issuer = issuer
        self.audiences = tuple(audiences)

    # ---- issuing (the TokenRequest API and the kubelet's projected tokens use this)

    def issue_service_account_token(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        audiences: list[str] | tuple[str, ...] | None = None,
        expiration_seconds: int = 3600,
        bound_pod: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> str:
        """Sign a token for ServiceAccount ``namespace/name`` with the cluster's SA key."""
        return sign_service_account_token(
            self._sa_private_key,
            namespace,
            name,
            uid,
            issuer=self.issuer,
            audiences=self.audiences if audiences is None else audiences,
            expiration_seconds=expiration_seconds,
            bound_pod=bound_pod,
            now=now,
        )

    def node_token(self, node_name: str) -> str:
        """The bearer token for ``node_name`` in this cluster."""
        return node_token(self._join_token, node_name)

    # ---- authenticating

    def authenticate(
        self,
        peer_cert: Mapping[str, Any] | x509.Certificate | bytes | None,
        authorization_header: str | None,
    ) -> UserInfo | None:
        """The caller's identity; None when no credentials were sent (anonymous).

        ``peer_cert`` may be what ``SSLObject.getpeercert()`` returns (a dict, only
        filled by ``ssl`` after it verified the chain), the DER bytes from
        ``getpeercert(binary_form=True)``, or a parsed certificate; the last two are
        checked against the CA here.
        """
        if peer_cert:
            return self._from_cert(peer_cert)
        if authorization_header is None or not authorization_header.strip():
            return None
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            raise AuthenticationError(f"unsupported authorization scheme {scheme!r}")
        if not token:
            raise AuthenticationError("empty bearer token")
        return self.authenticate_token(token)

    def authenticate_token(self, token: str) -> UserInfo:
        """Identity for a bearer token (TokenReview uses this too); raises if invalid."""
        if hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return UserInfo(ADMIN_USER, (MASTERS_GROUP, AUTHENTICATED))
        if hmac.compare_digest(token.encode(), self._join_token.encode()):
            return UserInfo(BOOTSTRAP_USER, (BOOTSTRAPPERS_GROUP, AUTHENTICATED))
        if token.startswith(NODE_TOKEN_PREFIX):
            return self._from_node_token(token)
        if token.count(".") == 2:
            return self._from_service_account_jwt(token)
        raise AuthenticationError("invalid bearer token")

    def _from_cert(self, peer_cert: Mapping[str, Any] | x509.Certificate | bytes) -> UserInfo:
        if isinstance(peer_cert, Mapping):
            common_names, orgs = _names_from_ssl_dict(peer_cert)
        else:
            cert = peer_cert if isinstance(peer_cert, x509.Certificate) else _load_der(peer_cert)
            if not signed_by(cert, self._ca_cert):
                raise AuthenticationError("client certificate is not signed by the cluster CA")
            now = time.time()
            if not (cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()):
                raise AuthenticationError("client certificate is expired or not yet valid")
            common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
            orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)]
        if not common_names or not common_names[0]:
            raise AuthenticationError("client certificate has no common name")
        groups = tuple(dict.fromkeys([*orgs, AUTHENTICATED]))
        return UserInfo(common_names[0], groups)

    def _from_node_token(self, token: str) -> UserInfo:
        body = token[len(NODE_TOKEN_PREFIX) :]
        node, sep, _digest = body.rpartition(":")
        if not sep or not node:
            raise AuthenticationError("malformed node token")
        if not hmac.compare_digest(token.encode(), node_token(self._join_token, node).encode()):
            raise AuthenticationError("invalid node token")
        return UserInfo(NODE_USER_PREFIX + node, (NODES_GROUP, AUTHENTICATED))

    def _from_service_account_jwt(self, token: str) -> UserInfo:
        try:
            claims = jwt.decode(
                token,
                self._sa_public_key,
                algorithms=[JWT_ALGORITHM],
                audience=list(self.audiences),
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("service account token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("service account token has an invalid audience") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from exc
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            raise AuthenticationError("service account token lacks kubernetes.io claims")
        namespace = private.get("namespace")
        sa = private.get("serviceaccount") or {}
        name, uid = sa.get("name"), sa.get("uid", "")
        if not namespace or not name or claims["sub"] != service_account_username(namespace, name):
            raise AuthenticationError("service account token has inconsistent claims")
        if self._sa_lookup is not None:
            current_uid = self._sa_lookup(namespace, name)
            if current_uid is None:
                raise AuthenticationError(f"service account {namespace}/{name} has been deleted")
            if uid and current_uid and current_uid != uid:
                raise AuthenticationError(f"service account {namespace}/{name} was recreated (uid mismatch)")
        extra: dict[str, tuple[str, ...]] = {}
        if jti := claims.get("jti"):
            extra[EXTRA_CREDENTIAL_ID] = (f"JTI={jti}",)
        pod = private.get("pod")
        if isinstance(pod, dict) and pod.get("name"):
            if self._pod_lookup is not None:
                pod_uid = self._pod_lookup(namespace, pod["name"])
                if pod_uid is None or (pod.get("uid") and pod_uid != pod["uid"]):
                    raise AuthenticationError(f"pod {namespace}/{pod['name']} bound to the token no longer exists")
            extra[EXTRA_POD_NAME] = (pod["name"],)
            if pod.get("uid"):
                extra[EXTRA_POD_UID] = (pod["uid"],)
        return UserInfo(
            service_account_username(namespace, name),
            (SA_GROUP, f"{SA_GROUP}:{namespace}", AUTHENTICATED),
            uid=uid or "",
            extra=extra,
        )


def _load_der(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise AuthenticationError("unreadable client certificate") from exc


def _names_from_ssl_dict(peer: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """CNs and Os from ``ssl``'s decoded form: ``subject`` is a tuple of RDN tuples."""
    common_names: list[str] = []
    orgs: list[str] = []
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_names.append(value)
            elif key == "organizationName":
                orgs.append(value)
    return common_names, orgs
