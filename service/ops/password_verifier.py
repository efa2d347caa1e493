"""A role's password as PostgreSQL stores it (a SCRAM-SHA-256 verifier), computed here so that the
password itself never travels to the server: a `CREATE ROLE ... PASSWORD 'secret'` would land in the
server's log whenever the statement fails or statements are logged. psql's `\\password` does the same
(PostgreSQL, "CREATE ROLE": "the password can be encrypted by the client").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)

# SASLprep's prohibited output (RFC 4013 §2.3), with unassigned code points, as PostgreSQL checks it.
_PROHIBITED = (
    stringprep.in_table_a1,
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(password: str) -> str:
    """The password as the server and the client both prepare it before hashing (RFC 4013; on any
    failure PostgreSQL, and asyncpg at login, use the password unchanged)."""
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(prohibited(c) for c in prepared for prohibited in _PROHIBITED):
        return password
    if any(stringprep.in_table_d1(c) for c in prepared):  # right-to-left text must be wholly so (RFC 3454 §6)
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            return password
        if any(stringprep.in_table_d2(c) for c in prepared):
            return password
    return prepared


def scram_sha_256(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802, RFC 7677)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
