"""Encryption at rest of the credentials' blobs (Keystone's credential keys): Fernet (AES-128-CBC
and HMAC-SHA256) with a key derived by HKDF from the deployment's SECRET_KEY, so a database dump
alone does not give the EC2 secrets that sign S3 requests. Changing SECRET_KEY makes the stored
blobs unreadable (they answer as absent), as rotating Keystone's credential keys without migrating
them does."""
from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"stratus identity credential blobs").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str | None:
    """The plain text, or None when it was not encrypted with this deployment's key."""
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def ec2_credential_id(access: str) -> str:
    """Keystone's id of an EC2 credential: the SHA-256 of its access key, so the key finds it."""
    return hashlib.sha256(access.encode()).hexdigest()
