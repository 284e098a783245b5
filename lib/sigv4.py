"""AWS Signature Version 4 as S3 checks it, in both forms: the ``Authorization`` header
(``AWS4-HMAC-SHA256 Credential=AKID/20260101/RegionOne/s3/aws4_request, SignedHeaders=host;...,
Signature=...``) and the presigned query (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``). No Django here: a request is plain
values (``Request``), the secret comes from whoever holds it (identity), and errors are S3's codes.

Use: ``claim = parse(request, now=...)`` reads what the request claims (who, when, what is signed) and
refuses a malformed, skewed or expired one; ``verify(request, claim, secret)`` recomputes the
signature with the secret and compares in constant time. The payload: a hex SHA-256 in
``x-amz-content-sha256`` is signed as given and the body must then hash to it, which only the reader
of the body can check (``PayloadHasher``); ``UNSIGNED-PAYLOAD`` signs no body (presigned URLs always).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)  # S3's RequestTimeTooSkewed
MAX_EXPIRES = 7 * 24 * 3600       # a presigned URL lives at most a week
SERVICE = "s3"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SPACES = re.compile(r"\s+")


class SigV4Error(Exception):
    """A refusal in S3's terms: its error ``code`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _malformed(message: str, *, presigned: bool) -> SigV4Error:
    if presigned:
        return SigV4Error("AuthorizationQueryParametersError", message, 400)
    return SigV4Error("AuthorizationHeaderMalformed", message, 400)


@dataclass(frozen=True)
class Request:
    """A request as received: ``path`` decoded (``/s3/bucket/a key``), ``query`` the raw query string,
    ``headers`` lowercase names to values (repeated headers joined by ``,``)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Claim:
    """What a signed request claims: its key, its time, its scope and what it signs."""

    access_key: str
    amz_date: str               # as signed (YYYYMMDDTHHMMSSZ)
    scope: str                  # date/region/service/aws4_request
    region: str
    signed_headers: tuple[str, ...]
    signature: str
    payload_hash: str           # hex SHA-256 or UNSIGNED-PAYLOAD, as signed
    presigned: bool
    expires_at: datetime | None = None


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, decoded (a ``+`` stays a plus, as AWS reads it)."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _encode(value: str, *, slash: bool = False) -> str:
    """AWS's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ (and ``/`` in a path) as %XX."""
    return quote(value, safe="/~" if slash else "~")


def _parse_amz_date(value: str, *, presigned: bool) -> datetime:
    try:
        return datetime.strptime(value, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise _malformed(f"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\": {value!r}",
                         presigned=presigned) from None


def _credential(value: str, *, presigned: bool) -> tuple[str, str, str, str]:
    """``AKID/date/region/service/aws4_request`` → (access key, date, region, scope)."""
    parts = value.split("/")
    if len(parts) != 5 or not parts[0] or parts[4] != "aws4_request":
        raise _malformed(f"the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/"
                         f"aws4_request\": {value!r}", presigned=presigned)
    access, date, region, service, _ = parts
    if service != SERVICE:
        raise _malformed(f"the Credential's service is wrong; expecting \"{SERVICE}\": {service!r}",
                         presigned=presigned)
    if not re.fullmatch(r"\d{8}", date) or not region:
        raise _malformed(f"the Credential is mal-formed: {value!r}", presigned=presigned)
    return access, date, region, "/".join(parts[1:])


def _signed_headers(value: str, headers: Mapping[str, str], *, presigned: bool) -> tuple[str, ...]:
    names = tuple(value.split(";")) if value else ()
    if not names or list(names) != sorted(set(names)) or any(n != n.lower() or not n for n in names):
        raise _malformed(f"SignedHeaders must be lowercase names, sorted, separated by ';': {value!r}",
                         presigned=presigned)
    if "host" not in names:
        raise SigV4Error("AccessDenied", "The host header must be signed.")
    missing = [n for n in names if n not in headers]
    if missing:
        raise SigV4Error("AccessDenied", f"Signed headers are missing from the request: {', '.join(missing)}.")
    unsigned = sorted(n for n in headers if n.startswith("x-amz-") and n not in names)
    if unsigned:
        raise SigV4Error("AccessDenied", "There were headers present in the request which were not signed: "
                         + ", ".join(unsigned) + ".")
    return names


def _payload_hash(value: str | None, *, required: bool) -> str:
    if value is None:
        if required:
            raise SigV4Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256.", 400)
        return UNSIGNED_PAYLOAD
    if value == UNSIGNED_PAYLOAD or _HEX64.match(value):
        return value
    if value.startswith("STREAMING-"):
        raise SigV4Error("NotImplemented", f"The payload signing method {value} is not implemented; send a signed "
                         "SHA-256 or UNSIGNED-PAYLOAD.", 501)
    raise SigV4Error("InvalidArgument", f"x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest: "
                     f"{value!r}.", 400)


def is_signed(request: Request) -> bool:
    """Whether the request carries a SigV4 signature (else it is anonymous)."""
    if "authorization" in request.headers:
        return True
    return any(name == "X-Amz-Signature" or name == "X-Amz-Credential" for name, _ in query_pairs(request.query))


def parse(request: Request, *, now: datetime) -> Claim:
    """The request's claim, refused when malformed, signed by another algorithm (AWS's V2 included),
    out of the clock's reach (15 minutes either way) or, presigned, expired."""
    auth = request.headers.get("authorization")
    if auth is not None:
        return _parse_header(request, auth, now)
    return _parse_query(request, now)


def _parse_header(request: Request, auth: str, now: datetime) -> Claim:
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error("InvalidArgument", f"Unsupported Authorization Type: {algorithm!r} (only {ALGORITHM}).",
                         400)
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or key in fields:
            raise _malformed(f"the authorization header is malformed: {part.strip()!r}", presigned=False)
        fields[key] = value
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise _malformed("the authorization header needs Credential, SignedHeaders and Signature.", presigned=False)
    access, date, region, scope = _credential(fields["Credential"], presigned=False)
    headers = request.headers
    if "x-amz-date" in headers:
        amz_date = headers["x-amz-date"]
        when = _parse_amz_date(amz_date, presigned=False)
    elif "date" in headers:
        try:
            when = parsedate_to_datetime(headers["date"]).astimezone(UTC)
        except (TypeError, ValueError):
            raise SigV4Error("AccessDenied", "The Date header is not a valid HTTP date.") from None
        amz_date = when.strftime(_AMZ_DATE)
    else:
        raise SigV4Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header.")
    if amz_date[:8] != date:
        raise _malformed(f"the Credential's date {date} is not the request's {amz_date[:8]}.", presigned=False)
    if abs(now - when) > MAX_SKEW:
        raise SigV4Error("RequestTimeTooSkewed",
                         "The difference between the request time and the current time is too large.")
    signature = fields["Signature"]
    if not _HEX64.match(signature):
        raise _malformed("the Signature is 64 lowercase hex digits.", presigned=False)
    signed = _signed_headers(fields["SignedHeaders"], headers, presigned=False)
    payload = _payload_hash(headers.get("x-amz-content-sha256"), required=True)
    return Claim(access_key=access, amz_date=amz_date, scope=scope, region=region, signed_headers=signed,
                 signature=signature, payload_hash=payload, presigned=False)


def _parse_query(request: Request, now: datetime) -> Claim:
    params: dict[str, str] = {}
    for name, value in query_pairs(request.query):
        if name.startswith("X-Amz-"):
            if name in params:
                raise _malformed(f"{name} is given twice.", presigned=True)
            params[name] = value
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
              "X-Amz-Signature")
    missing = [n for n in needed if n not in params]
    if missing:
        raise _malformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                         "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; missing "
                         + ", ".join(missing) + ".", presigned=True)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _malformed(f"X-Amz-Algorithm only supports \"{ALGORITHM}\".", presigned=True)
    access, date, region, scope = _credential(params["X-Amz-Credential"], presigned=True)
    amz_date = params["X-Amz-Date"]
    when = _parse_amz_date(amz_date, presigned=True)
    if amz_date[:8] != date:
        raise _malformed(f"the Credential's date {date} is not X-Amz-Date's {amz_date[:8]}.", presigned=True)
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or not 0 < int(expires) <= MAX_EXPIRES:
        raise _malformed(f"X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES}.", presigned=True)
    if when - now > MAX_SKEW:
        raise SigV4Error("AccessDenied", "Request is not valid yet.")
    expires_at = when + timedelta(seconds=int(expires))
    if now > expires_at:
        raise SigV4Error("AccessDenied", "Request has expired.")
    signature = params["X-Amz-Signature"]
    if not _HEX64.match(signature):
        raise _malformed("X-Amz-Signature is 64 lowercase hex digits.", presigned=True)
    signed = _signed_headers(params["X-Amz-SignedHeaders"], request.headers, presigned=True)
    payload = _payload_hash(request.headers.get("x-amz-content-sha256"), required=False)
    return Claim(access_key=access, amz_date=amz_date, scope=scope, region=region, signed_headers=signed,
                 signature=signature, payload_hash=payload, presigned=True, expires_at=expires_at)


def canonical_request(request: Request, claim: Claim) -> str:
    pairs = [(name, value) for name, value in query_pairs(request.query)
             if not (claim.presigned and name == "X-Amz-Signature")]
    query = "&".join(f"{n}={v}" for n, v in sorted((_encode(n), _encode(v)) for n, v in pairs))
    headers = "".join(f"{name}:{_SPACES.sub(' ', request.headers[name].strip())}\n" for name in claim.signed_headers)
    return "\n".join([request.method.upper(), _encode(request.path, slash=True), query, headers,
                      ";".join(claim.signed_headers), claim.payload_hash])


def string_to_sign(request: Request, claim: Claim) -> str:
    digest = hashlib.sha256(canonical_request(request, claim).encode()).hexdigest()
    return "\n".join([ALGORITHM, claim.amz_date, claim.scope, digest])


def signing_key(secret: str, scope: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(request: Request, claim: Claim, secret: str) -> str:
    return hmac.new(signing_key(secret, claim.scope), string_to_sign(request, claim).encode(),
                    hashlib.sha256).hexdigest()


def verify(request: Request, claim: Claim, secret: str) -> bool:
    """Whether ``claim``'s signature is the one ``secret`` makes for ``request`` (constant time)."""
    return hmac.compare_digest(signature(request, claim, secret), claim.signature)


class PayloadHasher:
    """Hashes a body as it streams and, when ``claim`` signed a SHA-256, refuses at its end a body
    that does not hash to it (S3's XAmzContentSHA256Mismatch), before the caller keeps anything."""

    def __init__(self, claim: Claim | None) -> None:
        self.expected = claim.payload_hash if claim is not None and claim.payload_hash != UNSIGNED_PAYLOAD else None
        self._hash = hashlib.sha256() if self.expected else None

    def update(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)

    def check(self) -> None:
        if self._hash is not None and not hmac.compare_digest(self._hash.hexdigest(), self.expected or ""):
            raise SigV4Error("XAmzContentSHA256Mismatch",
                             "The provided 'x-amz-content-sha256' header does not match what was computed.", 400)
