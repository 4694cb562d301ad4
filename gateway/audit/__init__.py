"""The tamper-evident audit log: RFC 9162 Merkle tree over canonical events."""
