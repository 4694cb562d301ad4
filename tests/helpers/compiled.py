"""The policy packs the tests' apps start from, compiled once per process and content.

Every app a test builds on a database without a stored version compiles the pack in
``settings.policies_dir`` (``PolicyEngine.from_directory``): 70-300 ms, paid ~1500 times
per run for the same few packs. ``compile_once`` returns the policy an earlier call
compiled from the same folder holding the same bytes; a pack that changed (a test edits
its copy) or that does not compile is compiled again, so its errors are raised as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.policy.compiler import CompiledPolicy, compile_policy

PackKey = tuple[str, tuple[tuple[str, bytes], ...]]


def pack_key(policies_dir: Path) -> PackKey:
    """Return the folder's path and every file under it (relative name, bytes), sorted."""
    files = sorted(
        (str(path.relative_to(policies_dir)), path.read_bytes())
        for path in policies_dir.rglob("*")
        if path.is_file()
    )
    return str(policies_dir.resolve()), tuple(files)


def compiler_once(
    compile_: Callable[[Path], CompiledPolicy] = compile_policy,
) -> Callable[[Path], CompiledPolicy]:
    """Return ``compile_`` remembering each result by ``pack_key``; errors are not kept."""
    made: dict[PackKey, CompiledPolicy] = {}

    def compile_once(policies_dir: Path) -> CompiledPolicy:
        if not policies_dir.is_dir():
            return compile_(policies_dir)  # raises the compiler's own error
        key = pack_key(policies_dir)
        compiled = made.get(key)
        if compiled is None:
            compiled = made[key] = compile_(policies_dir)
        return compiled

    return compile_once
