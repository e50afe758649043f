"""Reads the deployment files and the code into plain data for scripts/check-compose.py.

Compose files are merged the way Compose merges them (`!reset` and `!override` included) and
interpolated with no variable set, as a bare `docker compose up` sees them. The Dockerfile, the
workspace's crates, the migrations' tables, PromQL and SQL are read just far enough to name what
they use: stages, binaries, ports, metric and label names, tables and columns.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Aggregations, functions and keywords that can stand where a metric name could.
PROMQL_WORDS = set(
    """sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on
    ignoring group_left group_right bool and or unless offset rate irate increase delta idelta
    deriv predict_linear histogram_quantile abs ceil floor round clamp clamp_min clamp_max exp ln
    log2 log10 sqrt time timestamp vector scalar sort sort_desc label_replace label_join changes
    resets absent absent_over_time avg_over_time min_over_time max_over_time sum_over_time
    count_over_time last_over_time quantile_over_time inf nan""".split()
)
# Words that can follow a table name in FROM/JOIN without being its alias.
SQL_NOT_ALIAS = set(
    """where group order limit join left right inner outer full cross on using union having
    offset window as lateral""".split()
)
# What can start an entry of CREATE TABLE's list without being a column.
TABLE_CONSTRAINTS = {"PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK", "EXCLUDE"}


class Checker:
    """The problems found and the checks passed, for the closing report."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[str] = []
        self.passed: list[str] = []
        self.skipped: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def check(self, description: str, before: int) -> None:
        """Records `description` as passed when no error was added since `before`."""
        if len(self.errors) == before:
            self.passed.append(description)


class Reset:
    """`!reset`: the key is dropped from the merged model."""


@dataclass
class Override:
    """`!override VALUE`: VALUE replaces the key instead of merging into it."""

    value: object


class ComposeLoader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: ComposeLoader, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
ComposeLoader.add_constructor(
    "!override", lambda loader, node: Override(_construct_tagged(loader, node))
)


def load_yaml(checker: Checker, rel: str) -> object:
    path = checker.root / rel
    if not path.is_file():
        checker.fail(rel, "file is missing")
        return None
    try:
        # A SafeLoader subclass: it builds plain data only.
        return yaml.load(path.read_text(), Loader=ComposeLoader)
    except yaml.YAMLError as e:
        checker.fail(rel, f"does not parse as YAML: {e}")
        return None


_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: object) -> object:
    """Compose's `${VAR:-default}` interpolation with no variable set: what a bare `up` uses."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            op, default = m.group(2), m.group(3)
            return default if op in (":-", "-") and default is not None else ""

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, Override):
        return Override(interpolate(value.value))
    return value


def normalize_service(service: dict) -> dict:
    """List forms of environment and depends_on as the mapping forms Compose merges them as."""
    env = service.get("environment")
    if isinstance(env, list):
        service["environment"] = dict(
            (item.split("=", 1) + [None])[:2] if "=" in item else (item, None) for item in env
        )
    deps = service.get("depends_on")
    if isinstance(deps, list):
        service["depends_on"] = {name: {"condition": "service_started"} for name in deps}
    return service


REPLACED_SEQUENCES = {("command",), ("entrypoint",), ("healthcheck", "test")}


def merge(base: object, over: object, path: tuple[str, ...] = ()) -> object:
    """Compose's merge of `over` into `base` (compose-spec merge rules, simplified)."""
    if isinstance(over, Override):
        return over.value
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, Reset):
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, path + (key,))
            else:
                out[key] = strip_tags(value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        if path[-2:] in REPLACED_SEQUENCES or path[-1:] in REPLACED_SEQUENCES:
            return over
        return base + [v for v in over if v not in base]
    return strip_tags(over)


def strip_tags(value: object) -> object:
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value]
    return value


def compose_model(checker: Checker, files: list[str]) -> dict | None:
    model: dict | None = None
    for rel in files:
        doc = load_yaml(checker, rel)
        if not isinstance(doc, dict):
            if doc is not None:
                checker.fail(rel, "is not a YAML mapping")
            return None
        doc = interpolate(doc)
        for service in (doc.get("services") or {}).values():
            if isinstance(service, dict):
                normalize_service(service)
        model = strip_tags(doc) if model is None else merge(model, doc)
    return model


@dataclass
class Stage:
    name: str
    base: str
    healthcheck: bool = False
    exposes: set[int] = field(default_factory=set)
    copies_from_builder: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    runs: list[str] = field(default_factory=list)


def parse_dockerfile(checker: Checker, rel: str) -> dict[str, Stage]:
    path = checker.root / rel
    if not path.is_file():
        checker.fail(rel, "Dockerfile is missing")
        return {}
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            if not m:
                checker.fail(rel, f"cannot read `{line}`")
                continue
            name = m.group(2) or f"#{len(stages)}"
            current = Stage(name=name, base=m.group(1))
            stages[name] = current
        elif current is None:
            continue
        elif instruction == "HEALTHCHECK":
            current.healthcheck = not rest.strip().upper().startswith("NONE")
        elif instruction == "EXPOSE":
            for port in rest.split():
                current.exposes.add(int(port.split("/")[0]))
        elif instruction == "COPY" and "--from=builder" in rest:
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            current.copies_from_builder.extend(args[:-1])
        elif instruction == "ENTRYPOINT":
            try:
                current.entrypoint = json.loads(rest)
            except json.JSONDecodeError:
                current.entrypoint = shlex.split(rest)
        elif instruction == "RUN":
            current.runs.append(rest)
    return stages


def stage_chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and every stage it is built FROM, nearest first."""
    chain = []
    while name in stages and stages[name] not in chain:
        chain.append(stages[name])
        name = stages[name].base
    return chain


def workspace_binaries(checker: Checker) -> dict[str, str]:
    """Binary name -> crate directory, for every package of the workspace."""
    manifest = tomllib.loads((checker.root / "Cargo.toml").read_text())
    members: list[Path] = []
    for pattern in manifest.get("workspace", {}).get("members", []):
        members += [Path(p) for p in sorted(glob.glob(str(checker.root / pattern)))]
    bins: dict[str, str] = {}
    for crate in members:
        toml_path = crate / "Cargo.toml"
        if not toml_path.is_file():
            continue
        package = tomllib.loads(toml_path.read_text())
        rel = str(crate.relative_to(checker.root))
        declared_paths = set()
        for b in package.get("bin", []):
            bins[b["name"]] = rel
            declared_paths.add(b.get("path", f"src/bin/{b['name']}.rs"))
        autobins = package.get("package", {}).get("autobins", True)
        if autobins and (crate / "src/main.rs").is_file() and "src/main.rs" not in declared_paths:
            bins[package["package"]["name"]] = rel
        if autobins:
            for f in sorted((crate / "src/bin").glob("*.rs")):
                if f"src/bin/{f.name}" not in declared_paths:
                    bins[f.stem] = rel
            for f in sorted((crate / "src/bin").glob("*/main.rs")):
                bins.setdefault(f.parent.name, rel)
    return bins


def rust_sources(root: Path) -> dict[Path, str]:
    files = list(root.glob("services/*/src/**/*.rs")) + list(root.glob("shared/src/**/*.rs"))
    return {f: f.read_text() for f in sorted(files)}


def schema_from_migrations(root: Path) -> dict[str, set[str]]:
    """Table -> columns, from every migration of every service."""
    tables: dict[str, set[str]] = {}
    for f in sorted(root.glob("services/*/migrations/**/*.sql")):
        text = re.sub(r"--[^\n]*", "", f.read_text())
        for m in re.finditer(
            r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*?)\)\s*;",
            text,
            re.DOTALL | re.IGNORECASE,
        ):
            columns = tables.setdefault(m.group(1).lower(), set())
            depth, part, parts = 0, "", []
            for ch in m.group(2):
                depth += ch == "("
                depth -= ch == ")"
                if ch == "," and depth == 0:
                    parts.append(part)
                    part = ""
                else:
                    part += ch
            parts.append(part)
            for p in parts:
                words = p.split()
                if words and words[0].upper() not in TABLE_CONSTRAINTS:
                    columns.add(words[0].strip('"').lower())
        for m in re.finditer(
            r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)\s+ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
            text,
            re.IGNORECASE,
        ):
            tables.setdefault(m.group(1).lower(), set()).add(m.group(2).lower())
    return tables


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression uses."""
    labels: set[str] = set()
    for body in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body))
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    for body in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
    ):
        labels |= {w.strip() for w in body.split(",") if w.strip()}
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r'"[^"]*"', " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    words = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    return {w for w in words if w.lower() not in PROMQL_WORDS}, labels


def sql_references(raw: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(alias or table -> table, [(qualifier, column)]) a Grafana SQL query uses."""
    text = re.sub(r"'[^']*'", "''", raw)
    text = re.sub(r"--[^\n]*", "", text)
    text = re.sub(r"\$__\w+\([^)]*\)", "0", text)
    aliases: dict[str, str] = {}
    for m in re.finditer(
        r"\b(?:FROM|JOIN)\s+([a-zA-Z_]\w*)(?:\s+(?:AS\s+)?([a-zA-Z_]\w*))?", text, re.IGNORECASE
    ):
        table = m.group(1).lower()
        aliases[table] = table
        if m.group(2) and m.group(2).lower() not in SQL_NOT_ALIAS:
            aliases[m.group(2).lower()] = table
    columns = [
        (q.lower(), c.lower())
        for q, c in re.findall(r"(?<![\w.])([a-zA-Z_]\w*)\.([a-zA-Z_]\w*)", text)
    ]
    return aliases, columns
