"""A C2SP tlog-witness that any partner can run beside (not inside) the gateway.

It holds its own Ed25519 key and a small state file, never the gateway's database or
keys: it cosigns a log's checkpoint only when a consistency proof links it to the last
checkpoint it cosigned for that log, so a log that rewrites or rolls back its history
cannot get that history cosigned.
"""
