"""Encryption at rest and join tokens.

Keys live in ``$SHUZHI_KEY_DIR/keyring.json`` (default ``~/.config/shuzhi/keys``): outside the
lake and outside git, mode 0600. L3/L4 values are encrypted with Spark's built-in
``aes_encrypt(..., 'GCM')`` (AES-256-GCM, random IV per value); identity numbers also get a
keyed HMAC-SHA256 token over the normalised number, computed with built-in ``sha2`` so no
Python UDF is involved::

    >>> kr = Keyring.create(tmp_path)                                   # doctest: +SKIP
    >>> df = with_protected_fields(df, catalog().entity("police", "population"), kr)  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import functions as F

from .errors import SetupError
from .standards import citizen_id_lifted, citizen_id_normalised, citizen_id_stripped

KEYRING_FILE = "keyring.json"


@dataclass(frozen=True, repr=False)
class Keyring:
    key_id: str
    aes_key: bytes
    hmac_key: bytes

    def __repr__(self) -> str:  # never print key bytes
        return f"Keyring(key_id={self.key_id!r})"

    @classmethod
    def load(cls, key_dir: Path) -> "Keyring":
        path = Path(key_dir) / KEYRING_FILE
        if not path.is_file():
            raise SetupError(f"no keyring at {path}; run `make setup` (or `shuzhi setup`) to create one")
        data = json.loads(path.read_text())
        k = data["keys"][data["active"]]
        return cls(data["active"], bytes.fromhex(k["aes"]), bytes.fromhex(k["hmac"]))

    @classmethod
    def create(cls, key_dir: Path) -> "Keyring":
        """Create the keyring if absent (idempotent: an existing keyring is never replaced)."""
        key_dir = Path(key_dir)
        path = key_dir / KEYRING_FILE
        if path.is_file():
            return cls.load(key_dir)
        key_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(key_dir, 0o700)
        kid = "k" + datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        data = {"active": kid, "keys": {kid: {"aes": secrets.token_hex(32), "hmac": secrets.token_hex(32),
                                              "created": datetime.now(timezone.utc).isoformat()}}}
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
        return cls.load(key_dir)

    def token_py(self, normalised: str) -> str:
        """HMAC-SHA256 hex of a normalised value — the same token the Spark column yields."""
        return hmac.new(self.hmac_key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    block = 64
    k0 = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in k0), bytes(b ^ 0x5C for b in k0)


def hmac_token(col, keyring: Keyring):
    """HMAC-SHA256 (RFC 2104) of a string column's UTF-8 bytes, as 64 hex chars; null → null."""

    ipad, opad = _hmac_pads(keyring.hmac_key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.when(col.isNotNull(), F.sha2(F.concat(F.lit(opad), inner), 256))


def encrypt(col, keyring: Keyring):
    """AES-256-GCM ciphertext (binary) of the column's string form; null → null."""

    return F.aes_encrypt(col.cast("string"), F.lit(keyring.aes_key), F.lit("GCM"))


def decrypt(col, keyring: Keyring):
    """Plaintext string of an ``encrypt``-ed column (in memory only; never write it back)."""

    return F.aes_decrypt(col, F.lit(keyring.aes_key), F.lit("GCM")).cast("string")


def with_protected_fields(df, entity, keyring: Keyring):
    """Add ``<field>__tok`` join tokens for identity fields, then replace every L3/L4 field by its
    ciphertext. Columns keep their delivered names; plaintext never leaves this transform."""


    for f in entity.tokenised_fields:
        if f.element.separator:
            parts = F.split(F.col(f.name), f.element.separator)
            toks = F.transform(parts, lambda p: hmac_token(citizen_id_normalised(p), keyring))
            df = df.withColumn(f.token_column, F.filter(toks, lambda t: t.isNotNull()))
        else:
            # staged: the stripped number is used many times by the lifting (check-digit sum)
            df = df.withColumn("__id_s", citizen_id_stripped(F.col(f.name)))
            df = df.withColumn(f.token_column, hmac_token(citizen_id_lifted(F.col("__id_s")), keyring)).drop("__id_s")
    for f in entity.encrypted_fields:
        df = df.withColumn(f.name, encrypt(F.col(f.name), keyring))
    return df.withColumn("_key_id", F.lit(keyring.key_id))


CERTIFICATE_KEY_FILE = "certificate.key"


def certificate_key(key_dir: Path) -> bytes:
    """The destruction-certificate key: separate from the keyring (a certificate's digests must not
    be the lake's join tokens, which the destruction scan demands to be gone). Created on first use,
    mode 0600, never replaced."""
    path = Path(key_dir) / CERTIFICATE_KEY_FILE
    if not path.is_file():
        Path(key_dir).mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)     # atomic create-if-absent: a concurrent creator's key wins, ours is dropped
        except FileExistsError:
            pass
        os.unlink(tmp)
    return bytes.fromhex(path.read_text().strip())


def certificate_digest(key: bytes, value: str) -> str:
    """One-way digest of a destroyed record's key for the certificate (HMAC-SHA256 hex)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
