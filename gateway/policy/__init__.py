"""The policy engine: vocabulary, compiler (YAML -> Casbin rows), engine, decisions, recording.

Import from the submodules (``gateway.policy.decision``, ``.engine``, ``.compiler``,
``.vocabulary``, ``.recording``); this package module stays empty to keep imports acyclic.
"""
