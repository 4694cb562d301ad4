"""Policy packs as data: every file of a pack, its hash, and compiling and checking it.

A pack maps relative paths (``rules/20-delen-en-analyseren.yaml``) to text: what
``policies/`` holds on disk, what a stored version keeps, what a proposal edits.
Checking a pack compiles it (every name against the vocabulary, overlaps, obligations),
loads and runs its tables of expected decisions and runs the extra checks in
``PACK_CHECKS``, exactly as ``gateway policy lint`` and ``gateway policy test`` do for a
folder; problems come back as ``file:line: message`` with paths relative to the pack.
Results are cached by the pack's content hash, so checking the same pack twice is free.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import InvalidInputError
from gateway.policy import tables
from gateway.policy.compiler import RULES_DIR, CompiledPolicy, compile_policy
from gateway.policy.engine import PolicyEngine
from gateway.policy.retention import RETENTION_FILE, check_retention_file
from gateway.yamlsource import LineDict, LineList, SourceError, SourceProblem, load

EDITABLE_PATH = re.compile(
    r"^((rules|tests|agreements)/[a-z0-9][a-z0-9._-]{0,80}\.yaml|register\.yaml|"
    + RETENTION_FILE
    + ")$"
)
"""Files a proposal may add, change or delete (the register of processing activities and
the retention periods among them). The vocabulary and the Casbin model carry the
gateway's own names (roles, actions, request attributes): they change with a release of
the gateway, not through a proposal."""

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")
MAX_FILE_BYTES = 256 * 1024
MAX_PACK_BYTES = 4 * 1024 * 1024
MAX_FILES = 200
_CACHE_SIZE = 32


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def pack_hash(files: Mapping[str, str]) -> str:
    """Return the hex SHA-256 of the canonical JSON of ``files`` (path -> text)."""
    body = json.dumps(dict(sorted(files.items())), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Pack:
    """Every file of a policy pack (relative path -> text) and the hash of them all."""

    files: Mapping[str, str]
    sha256: str

    @classmethod
    def of(cls, files: Mapping[str, str]) -> Pack:
        """Return the pack of ``files``; raise InvalidInputError for unsafe paths or sizes."""
        if len(files) > MAX_FILES:
            raise InvalidInputError(f"a policy pack has at most {MAX_FILES} files")
        clean: dict[str, str] = {}
        total = 0
        for path, text in files.items():
            if not _SAFE_PATH.fullmatch(path) or ".." in path.split("/"):
                raise InvalidInputError("a file path is not a relative path inside the pack")
            if not isinstance(text, str):
                raise InvalidInputError(f"{path}: the content must be text")
            size = len(text.encode("utf-8"))
            if size > MAX_FILE_BYTES:
                raise InvalidInputError(f"{path}: a file has at most {MAX_FILE_BYTES} bytes")
            total += size
            clean[path] = _normalise(text)
        if total > MAX_PACK_BYTES:
            raise InvalidInputError(f"a policy pack has at most {MAX_PACK_BYTES} bytes in all")
        ordered = dict(sorted(clean.items()))
        return cls(files=ordered, sha256=pack_hash(ordered))

    @classmethod
    def from_json(cls, body: str) -> Pack:
        """Return the pack stored as JSON by ``to_json``."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise InvalidInputError("a stored pack is a JSON object of path: text")
        return cls.of({str(k): str(v) for k, v in data.items()})

    def to_json(self) -> str:
        """Return the files as a JSON object (sorted paths)."""
        return json.dumps(dict(self.files), ensure_ascii=False, separators=(",", ":"))

    @property
    def editable(self) -> list[str]:
        """Return the paths a proposal may change, sorted."""
        return [p for p in self.files if EDITABLE_PATH.fullmatch(p)]

    def with_changes(self, changes: Mapping[str, str | None]) -> Pack:
        """Return this pack with files replaced, added or (``None``) deleted.

        Raises InvalidInputError for a path a proposal may not touch (see
        ``EDITABLE_PATH``) and for deleting a file that does not exist.
        """
        files = dict(self.files)
        for path, text in changes.items():
            if not EDITABLE_PATH.fullmatch(path):
                raise InvalidInputError(
                    "a file path cannot be changed by a proposal: only register.yaml and "
                    "rules/, tests/ and agreements/ files named like name.yaml (lowercase) can",
                    field="files",
                )
            if text is None:
                if path not in files:
                    raise InvalidInputError(f"{path} does not exist, so it cannot be deleted")
                del files[path]
            else:
                files[path] = text
        return Pack.of(files)

    def changed_paths(self, other: Pack) -> list[str]:
        """Return the paths whose content differs between ``other`` and this pack."""
        paths = set(self.files) | set(other.files)
        return sorted(p for p in paths if self.files.get(p) != other.files.get(p))

    def write_to(self, folder: Path) -> None:
        """Write every file under ``folder`` (which must exist)."""
        for path, text in self.files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def read_pack(folder: Path) -> Pack:
    """Return every file under ``folder`` (hidden files and caches skipped) as a pack.

    Raises InvalidInputError for a missing folder, a file that is not UTF-8 text, or a
    pack beyond the size limits.
    """
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder")
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if not path.is_file():
            continue
        try:
            files[rel.as_posix()] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{rel}: not UTF-8 text") from exc
    return Pack.of(files)


@contextmanager
def materialised(pack: Pack) -> Iterator[Path]:
    """Yield a temporary folder holding the pack's files; it is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gateway-pack-") as tmp:
        folder = Path(tmp)
        pack.write_to(folder)
        yield folder


def _relative(problem: SourceProblem, folder: Path) -> SourceProblem:
    try:
        rel = problem.path.resolve().relative_to(folder.resolve())
    except ValueError:
        return problem
    return SourceProblem(rel, problem.line, problem.message)


def _relative_error(exc: SourceError, folder: Path) -> SourceError:
    return SourceError([_relative(p, folder) for p in exc.problems])


def _relative_policy(compiled: CompiledPolicy, folder: Path) -> CompiledPolicy:
    def rel(path: Path) -> Path:
        try:
            return path.resolve().relative_to(folder.resolve())
        except ValueError:
            return path

    rules = tuple(dataclasses.replace(r, path=rel(r.path)) for r in compiled.rules)
    vocabulary = dataclasses.replace(compiled.vocabulary, path=rel(compiled.vocabulary.path))
    return dataclasses.replace(compiled, rules=rules, vocabulary=vocabulary)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RuleText:
    """A rule as its author wrote it: file, line, conditions, obligations, reason, source."""

    file: str
    line: int
    id: str
    effect: str
    when: Mapping[str, Any]
    obligations: tuple[Any, ...]
    reason: str
    source: str
    overrides: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        """Return the comparable fields (``when.<attribute>`` flattened), for diffs."""
        result: dict[str, Any] = {
            "effect": self.effect,
            "obligations": list(self.obligations),
            "reason": self.reason,
            "source": self.source,
            "overrides": list(self.overrides),
            "file": self.file,
        }
        for key, value in self.when.items():
            result[f"when.{key}"] = value
        return result


@dataclass(frozen=True)
class PackAnalysis:
    """A pack that compiles: the compiled policy and its rules as written."""

    pack: Pack
    compiled: CompiledPolicy
    rules: tuple[RuleText, ...]


@dataclass(frozen=True)
class CheckedPack:
    """A pack that compiles and whose tables load, with the tables' mismatches (if any)."""

    analysis: PackAnalysis
    expected_decisions: int
    table_failures: tuple[str, ...]

    @property
    def compiled(self) -> CompiledPolicy:
        """Return the compiled policy."""
        return self.analysis.compiled

    def summary(self) -> dict[str, Any]:
        """Return the lint result as JSON-ready data (stored with a proposal)."""
        compiled = self.compiled
        return {
            "compiles": True,
            "problems": [],
            "rules": len(compiled.rules),
            "rows": len(compiled.rows),
            "expected_decisions": self.expected_decisions,
            "table_failures": list(self.table_failures),
            "policy_version": compiled.version,
        }


PackCheck = Callable[[Path], None]
"""An extra check of a materialised pack folder; raises SourceError with its problems."""


def check_agreement_files(folder: Path) -> None:
    """Raise SourceError unless every ``agreements/*.yaml`` parses as a YAML mapping."""
    problems: list[SourceProblem] = []
    for path in sorted((folder / "agreements").glob("*.yaml")):
        try:
            doc = load(path)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(doc, dict):
            problems.append(SourceProblem(path, 1, "an agreement is a YAML mapping"))
    if problems:
        raise SourceError(problems)


PACK_FILE = "pack.yaml"
"""Names the partner that owns the pack; its privacy officers approve every change.
Like the vocabulary it is not editable by a proposal: it changes with a release."""
PACK_APPROVERS = "privacy-officers"
_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


def _read_owner(folder: Path) -> str | None:
    """Return the owner named in ``folder/pack.yaml`` (None without the file).

    Raises SourceError when the file is not a mapping with a partner id ``owner`` and
    ``approvers: privacy-officers``.
    """
    path = folder / PACK_FILE
    if not path.exists():
        return None
    doc = load(path)
    if not isinstance(doc, LineDict):
        raise SourceError([SourceProblem(path, 1, "pack.yaml is a YAML mapping")])
    problems: list[SourceProblem] = []
    owner = doc.get("owner")
    if not isinstance(owner, str) or not _PARTNER_ID.fullmatch(owner):
        problems.append(
            SourceProblem(
                path, doc.line_of("owner"), "owner must be the partner id of the pack's RIEC"
            )
        )
    if doc.get("approvers") != PACK_APPROVERS:
        problems.append(
            SourceProblem(
                path,
                doc.line_of("approvers"),
                f"approvers must be {PACK_APPROVERS!r} (of the owner): no other approvers "
                "are supported",
            )
        )
    unknown = sorted(set(doc) - {"owner", "approvers"})
    if unknown:
        problems.append(SourceProblem(path, doc.line_of(unknown[0]), f"unknown key {unknown[0]!r}"))
    if problems:
        raise SourceError(problems)
    assert isinstance(owner, str)
    return owner


def check_pack_file(folder: Path) -> None:
    """Raise SourceError unless ``pack.yaml``, where present, names a valid owner."""
    _read_owner(folder)


def pack_owner(pack: Pack) -> str | None:
    """Return the partner id that owns ``pack`` (``pack.yaml``), or None if it names none.

    Raises SourceError when ``pack.yaml`` is malformed. Cached by content hash.
    """
    if PACK_FILE not in pack.files:
        return None

    def build() -> str | None:
        with materialised(pack) as folder:
            try:
                return _read_owner(folder)
            except SourceError as exc:
                raise _relative_error(exc, folder) from None

    return _cached("owner", pack, build)


PACK_CHECKS: list[PackCheck] = [check_agreement_files, check_pack_file, check_retention_file]
"""Checks every proposal passes besides compiling and its tables loading. The research
agreements' own loader belongs here once it exists (append a ``PackCheck``)."""

_T = TypeVar("_T")
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(kind: str, pack: Pack, build: Callable[[], _T]) -> _T:
    key = (kind, pack.sha256)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            hit: _T = _cache[key]
            return hit
    value = build()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _rule_texts(folder: Path) -> tuple[RuleText, ...]:
    result: list[RuleText] = []
    for path in sorted((folder / RULES_DIR).glob("*.yaml")):
        doc = load(path)
        rel = path.relative_to(folder).as_posix()
        if not isinstance(doc, LineDict) or not isinstance(doc.get("rules"), LineList):
            continue
        for item, line in zip(doc["rules"], doc["rules"].item_lines, strict=True):
            if not isinstance(item, dict):
                continue
            result.append(
                RuleText(
                    file=rel,
                    line=line,
                    id=str(item.get("id", "")),
                    effect=str(item.get("effect", "")),
                    when=_plain(item.get("when") or {}),
                    obligations=tuple(_plain(item.get("obligations") or [])),
                    reason=" ".join(str(item.get("reason", "")).split()),
                    source=str(item.get("source", "")).strip(),
                    overrides=tuple(str(o) for o in (item.get("overrides") or [])),
                )
            )
    return tuple(result)


def compile_pack(pack: Pack) -> CompiledPolicy:
    """Return the compiled policy of ``pack`` (cached by content hash).

    Raises SourceError (paths relative to the pack) when it does not compile.
    """

    def build() -> CompiledPolicy:
        with materialised(pack) as folder:
            try:
                compiled = compile_policy(folder)
            except SourceError as exc:
                raise _relative_error(exc, folder) from None
            return _relative_policy(compiled, folder)

    return _cached("compiled", pack, build)


def analyse_pack(pack: Pack) -> PackAnalysis:
    """Return the compiled pack and its rules as written (cached by content hash).

    Raises SourceError (paths relative to the pack) when it does not compile.
    """

    def build() -> PackAnalysis:
        compiled = compile_pack(pack)
        with materialised(pack) as folder:
            return PackAnalysis(pack, compiled, _rule_texts(folder))

    return _cached("analysis", pack, build)


def check_pack(pack: Pack) -> CheckedPack:
    """Return the lint result of ``pack``: compiled, tables loaded and run, extra checks passed.

    Raises SourceError (every problem, ``file:line: message`` relative to the pack) when
    it does not compile, its tables do not load, or an extra check fails. Mismatches of
    the tables are not errors here: they are returned, for the people deciding to see.
    """

    def build() -> CheckedPack:
        analysis = analyse_pack(pack)
        with materialised(pack) as folder:
            problems: list[SourceProblem] = []
            try:
                expected = tables.load_tables(folder)
            except SourceError as exc:
                problems.extend(_relative_error(exc, folder).problems)
                expected = []
            for check in PACK_CHECKS:
                try:
                    check(folder)
                except SourceError as exc:
                    problems.extend(_relative_error(exc, folder).problems)
            if problems:
                raise SourceError(problems)
            outcomes = tables.run(PolicyEngine(analysis.compiled), expected)
            failures = []
            for outcome in outcomes:
                if outcome.passed:
                    continue
                e = outcome.expected
                where = _relative(SourceProblem(e.path, e.line, ""), folder).path.as_posix()
                failures.append(f"{where}:{e.line}: {e.name}: {'; '.join(outcome.differences)}")
        return CheckedPack(analysis, len(expected), tuple(failures))

    return _cached("check", pack, build)


def engine_for(pack: Pack) -> PolicyEngine:
    """Return a decision engine over ``pack`` (cached, with its own decision cache).

    Raises SourceError when the pack does not compile.
    """
    return _cached("engine", pack, lambda: PolicyEngine(compile_pack(pack)))
