"""CMI's `ver3` hash: base64(SHA-512) over the escaped field values sorted by name, then the store key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

_EXCLUDED = {"hash", "encoding"}
_DIGITS = re.compile(r"(\d+)")


def escape(value: str) -> str:
    """`\\` becomes `\\\\` and `|` becomes `\\|`, so no value can fake a separator."""
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    # Case-insensitive natural order (the gateway's reference code sorts with PHP's natcasesort).
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(name.lower()) if part
    )


def hash_plaintext(fields: Mapping[str, str], store_key: str) -> str:
    """The string that is hashed: values of every field but HASH and encoding, then the store key."""
    names = sorted((n for n in fields if n.lower() not in _EXCLUDED), key=lambda n: (_natural(n), n))
    return "|".join([*(escape(fields[n]) for n in names), escape(store_key)])


def compute_hash(fields: Mapping[str, str], store_key: str) -> str:
    digest = hashlib.sha512(hash_plaintext(fields, store_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def hash_matches(fields: Mapping[str, str], received: str, store_keys: Iterable[str]) -> bool:
    """Constant-time check of `received` against the hash under every configured store key."""
    matched = False
    for key in store_keys:
        matched |= hmac.compare_digest(compute_hash(fields, key).encode(), received.encode())
    return matched
