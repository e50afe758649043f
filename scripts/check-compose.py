#!/usr/bin/env python3
"""Checks the docker compose deployment against the code, without Docker.

Reads docker-compose.yml, docker-compose.sim.yml, docker-compose.cluster.yml (merged the way Compose merges them, `!reset` and
`!override` included), the Dockerfile, the workspace's Cargo.toml files and Rust sources, the
migrations, deploy/prometheus.yml and the Grafana provisioning and dashboard, and fails, naming
every problem, when they disagree: a build target with no Dockerfile stage, a binary that no
crate builds, a mount of a missing file, a variable no service reads, a scrape target that is no
service or no port, a metric, label, table or column the code does not have, and so on.
When `docker compose` is installed it also runs `docker compose config` on both file sets.

Usage: scripts/check-compose.py [--root DIR]   (Python 3.11+, PyYAML: pip install pyyaml)
The file reading is in check_compose_read.py beside it.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
try:
    import yaml  # noqa: F401 (check_compose_read needs it; say so before its ImportError does)
except ImportError:
    sys.exit("check-compose: PyYAML is missing: python3 -m pip install pyyaml")

from check_compose_read import (  # noqa: E402 (after the PyYAML check)
    Checker,
    Stage,
    compose_model,
    load_yaml,
    parse_dockerfile,
    promql_names,
    rust_sources,
    schema_from_migrations,
    sql_references,
    stage_chain,
    workspace_binaries,
)

BASE_FILE = "docker-compose.yml"
SIM_FILE = "docker-compose.sim.yml"
CLUSTER_FILE = "docker-compose.cluster.yml"
GPU_SERVICES = ("ollama", "worker")  # what the GPU file reserves GPUs for and the sim file frees
SCALED_SERVICES = ("worker",)  # `--scale`d: no container_name, no fixed host port
# Read by the services though no `env = "..."` names them: tracing's EnvFilter reads RUST_LOG.
IMPLICIT_ENV = {"RUST_LOG"}
GRAFANA_PROVISIONING = "deploy/grafana/provisioning"
GRAFANA_DASHBOARDS = "deploy/grafana/dashboards"
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


Dockerfiles = dict[str, dict[str, Stage]]  # path -> its stages by name


def built_stages(checker: Checker, svc: dict, dockerfiles: Dockerfiles) -> list[Stage] | None:
    """The Dockerfile stages a built service's image is made of, nearest first; None when the
    service is not built here or its Dockerfile has no such target (check_builds says which)."""
    build = svc.get("build")
    if not isinstance(build, dict) or not build.get("target"):
        return None
    context = checker.root / build.get("context", ".")
    rel = os.path.relpath(context / build.get("dockerfile", "Dockerfile"), checker.root)
    if rel not in dockerfiles:
        dockerfiles[rel] = parse_dockerfile(checker, rel) if context.is_dir() else {}
    stages = dockerfiles[rel]
    return stage_chain(stages, build["target"]) if build["target"] in stages else None


def check_services(
    checker: Checker, label: str, model: dict, dockerfiles: Dockerfiles, env_names: set[str]
) -> None:
    """Every check of one merged compose model."""
    services: dict = model.get("services") or {}
    for check in (check_builds, check_depends_on, check_mounts, check_scaling):
        before = len(checker.errors)
        description = check(checker, label, model, services, dockerfiles)
        checker.check(f"{label}: {description}", before)
    before = len(checker.errors)
    check_env(checker, label, services, env_names)
    checker.check(f"{label}: every variable set on a Nightshift service is one it reads", before)


def check_builds(
    checker: Checker, label: str, model: dict, services: dict, dockerfiles: Dockerfiles
) -> str:
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = checker.root / build.get("context", ".")
        if not context.is_dir():
            checker.fail(f"{label}: {name}", f"build context {build.get('context')} is no folder")
            continue
        dockerfile = os.path.relpath(context / build.get("dockerfile", "Dockerfile"), checker.root)
        target = build.get("target")
        chain = built_stages(checker, svc, dockerfiles)
        if target is None:
            checker.fail(f"{label}: {name}", "build has no target (the Dockerfile has one each)")
        elif chain is None:
            stages = ", ".join(s for s in dockerfiles.get(dockerfile, {}) if not s.startswith("#"))
            checker.fail(
                f"{label}: {name}",
                f"build.target {target!r} is no `FROM ... AS {target}` stage of {dockerfile} "
                f"(stages: {stages})",
            )
        elif svc.get("entrypoint") is None:
            entry = next((s.entrypoint for s in chain if s.entrypoint is not None), None)
            copied = {Path(p).name for s in chain for p in s.copies_from_builder}
            if not entry:
                checker.fail(f"{label}: {name}", f"target {target} has no ENTRYPOINT")
            elif not entry[0].startswith("/") and entry[0] not in copied:
                checker.fail(
                    f"{label}: {name}",
                    f"target {target} runs {entry[0]}, which it does not copy from the builder",
                )
    return "every build context, Dockerfile and target exists; each ENTRYPOINT is a copied binary"


def check_depends_on(
    checker: Checker, label: str, model: dict, services: dict, dockerfiles: Dockerfiles
) -> str:
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            where = f"{label}: {name}"
            if dep not in services:
                checker.fail(where, f"depends_on {dep!r}, which is no service")
                continue
            condition = (spec or {}).get("condition", "service_started")
            if condition not in DEPENDS_CONDITIONS:
                checker.fail(where, f"depends_on {dep}: unknown condition {condition!r}")
            if condition == "service_healthy" and not has_healthcheck(
                checker, services[dep], dockerfiles
            ):
                checker.fail(
                    where,
                    f"waits for {dep} to be healthy, but {dep} has no healthcheck "
                    "(neither in compose nor as a HEALTHCHECK of its Dockerfile target)",
                )
            dep_profiles = set(services[dep].get("profiles") or [])
            if dep_profiles and not dep_profiles & set(svc.get("profiles") or []):
                checker.fail(
                    where, f"depends on {dep}, which runs only under {sorted(dep_profiles)}"
                )
    return "every depends_on names a service, and the healthy ones have a healthcheck"


def check_mounts(
    checker: Checker, label: str, model: dict, services: dict, dockerfiles: Dockerfiles
) -> str:
    declared_volumes = set((model.get("volumes") or {}).keys())
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if not source:
                continue
            if source.startswith((".", "/")):
                if not (checker.root / source).exists():
                    checker.fail(f"{label}: {name}", f"mounts {source}, which does not exist")
            elif source not in declared_volumes:
                checker.fail(f"{label}: {name}", f"uses volume {source!r}, not under volumes:")
    return "every bind-mounted file exists and every named volume is declared"


def check_scaling(
    checker: Checker, label: str, model: dict, services: dict, dockerfiles: Dockerfiles
) -> str:
    for name in SCALED_SERVICES:
        svc = services.get(name)
        if svc is None:
            checker.fail(label, f"has no {name} service")
            continue
        if "container_name" in svc:
            checker.fail(f"{label}: {name}", "has a container_name: `--scale` cannot start two")
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                published = port.get("published")
            else:
                published = str(port).rsplit(":", 1)[0] if ":" in str(port) else None
            if published:
                checker.fail(f"{label}: {name}", f"publishes host port {port}: `--scale` collides")
    return f"{', '.join(SCALED_SERVICES)} can be scaled (no container_name, no host port)"


def check_env(checker: Checker, label: str, services: dict, env_names: set[str]) -> None:
    for name, svc in services.items():
        if not svc.get("build"):
            continue  # third-party images read their own variables
        for var in svc.get("environment") or {}:
            if var not in env_names:
                checker.fail(
                    f"{label}: {name}",
                    f'sets {var}, which no Nightshift service reads (no "{var}" in its sources)',
                )


def has_healthcheck(checker: Checker, svc: dict, dockerfiles: Dockerfiles) -> bool:
    health = svc.get("healthcheck")
    if isinstance(health, dict) and health.get("disable"):
        return False
    if isinstance(health, dict) and health.get("test"):
        return True
    return any(s.healthcheck for s in built_stages(checker, svc, dockerfiles) or [])


def gpu_reserved(svc: dict) -> bool:
    devices = (
        ((svc.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices")
    )
    return any("gpu" in (d.get("capabilities") or []) for d in devices or [])


def check_gpu_split(checker: Checker, base: dict, sim: dict) -> None:
    before = len(checker.errors)
    for name in GPU_SERVICES:
        if not gpu_reserved((base.get("services") or {}).get(name, {})):
            checker.fail(
                f"{BASE_FILE}: {name}", "reserves no GPU (deploy.resources.reservations.devices)"
            )
    for name, svc in (sim.get("services") or {}).items():
        if (svc.get("deploy") or {}).get("resources", {}).get("reservations", {}).get("devices"):
            checker.fail(
                f"{BASE_FILE} + {SIM_FILE}: {name}",
                "still reserves a device: the sim stack must run without a GPU",
            )
    ollama = (sim.get("services") or {}).get("ollama", {})
    if (ollama.get("build") or {}).get("target") != "ollama-sim" or "image" in ollama:
        checker.fail(
            f"{BASE_FILE} + {SIM_FILE}: ollama",
            "is not built from the ollama-sim target (or keeps an image)",
        )
    checker.check(
        "GPU stack reserves GPUs for ollama and worker; "
        "the sim stack reserves none and runs ollama-sim",
        before,
    )


def check_binaries(checker: Checker, stages: dict[str, Stage], bins: dict[str, str]) -> None:
    before = len(checker.errors)
    builder = stages.get("builder")
    built: set[str] = set()
    if builder is None:
        checker.fail("Dockerfile", "has no `builder` stage")
    else:
        for run in builder.runs:
            m = re.search(r'bins="([^"]+)"', run)
            if m:
                built |= set(m.group(1).split())
            built |= set(re.findall(r"--bin[ =]([\w-]+)", run))
        for b in sorted(built):
            if b not in bins:
                checker.fail(
                    "Dockerfile",
                    f"builds binary {b!r}, which no workspace crate has "
                    f"(crates' bins: {', '.join(sorted(bins))})",
                )
    for stage in stages.values():
        for src in stage.copies_from_builder:
            b = Path(src).name
            if b not in bins:
                checker.fail(
                    f"Dockerfile: {stage.name}", f"copies {src}, which no workspace crate builds"
                )
            elif built and b not in built:
                checker.fail(
                    f"Dockerfile: {stage.name}",
                    f"copies {src}, which the builder stage does not build",
                )
    checker.check(
        "Dockerfile: every binary built and copied is a [[bin]] or package of the workspace", before
    )


def check_dockerignore(checker: Checker) -> None:
    before = len(checker.errors)
    path = checker.root / ".dockerignore"
    if not path.is_file():
        checker.fail(
            ".dockerignore", "is missing (the build context would carry target/ and .git/)"
        )
        return
    patterns = [
        p.strip().rstrip("/")
        for p in path.read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    manifest = tomllib.loads((checker.root / "Cargo.toml").read_text())
    needed = ["Cargo.toml", "Cargo.lock"] + [
        str(Path(p).relative_to(checker.root))
        for pattern in manifest.get("workspace", {}).get("members", [])
        for p in glob.glob(str(checker.root / pattern))
    ]
    for rel in needed:
        for pattern in patterns:
            if not pattern.startswith("!") and fnmatch.fnmatch(rel, pattern):
                checker.fail(
                    ".dockerignore", f"pattern {pattern!r} leaves {rel} out of the build context"
                )
    for must in ("target", ".git"):
        if must not in patterns:
            checker.fail(".dockerignore", f"does not leave out {must}/")
    checker.check(
        ".dockerignore keeps the workspace in the build context and target/, .git/ out", before
    )


def check_prometheus(checker: Checker, model: dict, dockerfiles: Dockerfiles) -> None:
    before = len(checker.errors)
    rel = "deploy/prometheus.yml"
    config = load_yaml(checker, rel)
    services: dict = model.get("services") or {}
    if not isinstance(config, dict):
        return
    jobs = config.get("scrape_configs") or []
    if not jobs:
        checker.fail(rel, "has no scrape_configs")
    for job in jobs:
        targets: list[tuple[str, int | None]] = []
        for static in job.get("static_configs") or []:
            for t in static.get("targets") or []:
                host, _, port = t.rpartition(":")
                targets.append((host, int(port) if port.isdigit() else None))
        for dns in job.get("dns_sd_configs") or []:
            for n in dns.get("names") or []:
                targets.append((n, dns.get("port")))
        if not targets:
            checker.fail(f"{rel}: job {job.get('job_name')}", "has no static or DNS targets")
        for host, port in targets:
            svc = services.get(host)
            if svc is None:
                checker.fail(
                    f"{rel}: job {job.get('job_name')}",
                    f"scrapes {host!r}, which is no compose service",
                )
                continue
            chain = built_stages(checker, svc, dockerfiles)
            exposed = {p for s in chain or [] for p in s.exposes}
            if svc.get("build") and port not in exposed:
                checker.fail(
                    f"{rel}: job {job.get('job_name')}",
                    f"scrapes {host}:{port}, but its image exposes {sorted(exposed) or 'no port'}",
                )
    checker.check(
        f"{rel} parses and scrapes compose services on the ports their images expose", before
    )


def files_registering(root: Path, name: str, sources: dict[Path, str]) -> list[Path]:
    """The service sources that hold `"name"`: where a Prometheus metric gets registered."""
    return [
        p
        for p, text in sources.items()
        if p.relative_to(root).parts[0] == "services" and f'"{name}"' in text
    ]


def check_grafana_provisioning(checker: Checker, model: dict) -> dict[str, str]:
    """Checks the datasource and provider files; returns the provisioned datasource uids."""
    services: dict = model.get("services") or {}
    grafana = services.get("grafana")
    before = len(checker.errors)
    uids: dict[str, str] = {}
    ds_files = sorted((checker.root / GRAFANA_PROVISIONING / "datasources").glob("*.y*ml"))
    if not ds_files:
        checker.fail(f"{GRAFANA_PROVISIONING}/datasources", "holds no datasource file")
    for f in ds_files:
        rel = str(f.relative_to(checker.root))
        for ds in (load_yaml(checker, rel) or {}).get("datasources") or []:
            name = ds.get("name")
            if not ds.get("uid"):
                checker.fail(rel, f"datasource {name!r} has no uid for the dashboard to name")
                continue
            uids[ds["uid"]] = ds.get("type", "")
            host = re.sub(r"^\w+://", "", str(ds.get("url", ""))).split(":")[0].split("/")[0]
            if host not in services:
                checker.fail(rel, f"datasource {name!r} points at {host!r}: no compose service")

    if grafana is None:
        checker.fail(BASE_FILE, "has no grafana service")
    mounts = {}  # container path -> repository path, of grafana's bind mounts
    for volume in (grafana or {}).get("volumes") or []:
        if isinstance(volume, str) and volume.startswith("./"):
            src, dst = volume.split(":")[:2]
            mounts[dst.rstrip("/")] = src.removeprefix("./").rstrip("/")
    provider_files = sorted((checker.root / GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
    if not provider_files:
        checker.fail(f"{GRAFANA_PROVISIONING}/dashboards", "holds no dashboard provider file")
    for f in provider_files:
        rel = str(f.relative_to(checker.root))
        for provider in (load_yaml(checker, rel) or {}).get("providers") or []:
            path = str((provider.get("options") or {}).get("path", "")).rstrip("/")
            if mounts.get(path) != GRAFANA_DASHBOARDS:
                checker.fail(
                    rel,
                    f"provider reads {path}, where grafana mounts "
                    f"{mounts.get(path) or 'nothing'}, not {GRAFANA_DASHBOARDS}",
                )
    checker.check(
        "Grafana provisioning parses; datasources point at compose services; "
        "the provider reads the mounted dashboards",
        before,
    )
    return uids


def check_promql(
    checker: Checker, where: str, target: dict, sources: dict[Path, str], used: set[str]
) -> None:
    """Every metric of the query is registered in a service, with every label the query uses."""
    names, labels = promql_names(target["expr"])
    labels |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    if not names:
        checker.fail(where, f"expr {target['expr']!r} names no metric")
    for name in sorted(names):
        used.add(name)
        files = files_registering(checker.root, name, sources)
        if not files:
            checker.fail(where, f"uses metric {name!r}, which no services/*/src registers")
            continue
        for label in sorted(labels):
            if not any(f'"{label}"' in sources[p] for p in files):
                in_files = ", ".join(str(p.relative_to(checker.root)) for p in files)
                checker.fail(where, f"uses label {label!r}, which {name} has not ({in_files})")


def check_sql(checker: Checker, where: str, raw: str, schema: dict[str, set[str]]) -> None:
    """Every table of the query is created by a migration and every alias.column exists."""
    aliases, columns = sql_references(raw)
    for table in sorted(set(aliases.values())):
        if table not in schema:
            checker.fail(where, f"queries table {table!r}, which no migration creates")
    for qualifier, column in columns:
        table = aliases.get(qualifier)
        if table is None:
            checker.fail(where, f"uses {qualifier}.{column}: {qualifier!r} is no table or alias")
        elif table in schema and column not in schema[table]:
            checker.fail(where, f"uses {qualifier}.{column}, but {table} has no column {column!r}")


def check_dashboards(checker: Checker, uids: dict[str, str], sources: dict[Path, str]) -> None:
    before = len(checker.errors)
    schema = schema_from_migrations(checker.root)
    dashboards = sorted((checker.root / GRAFANA_DASHBOARDS).glob("*.json"))
    if not dashboards:
        checker.fail(GRAFANA_DASHBOARDS, "holds no dashboard")
    used_metrics: set[str] = set()
    for f in dashboards:
        rel = str(f.relative_to(checker.root))
        try:
            dash = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            checker.fail(rel, f"is not JSON: {e}")
            continue
        panels = list(dash.get("panels") or [])
        for row in list(panels):
            panels += row.get("panels") or []  # those of collapsed rows
        for panel in panels:
            where = f"{rel}: panel {panel.get('title')!r}"
            for target in panel.get("targets") or []:
                ds = target.get("datasource") or panel.get("datasource") or {}
                uid = ds.get("uid") if isinstance(ds, dict) else ds
                if uid not in uids:
                    checker.fail(where, f"uses datasource {uid!r}; provisioned: {sorted(uids)}")
                if "expr" in target:
                    check_promql(checker, where, target, sources, used_metrics)
                if "rawSql" in target:
                    check_sql(checker, where, target["rawSql"], schema)
    checker.check(
        f"Grafana dashboard parses; its {len(used_metrics)} metrics and their labels are "
        "registered in services/*/src, its SQL tables and columns exist in the migrations",
        before,
    )


def run_docker_compose(checker: Checker) -> None:
    try:
        probe = subprocess.run(
            ["docker", "compose", "version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        probe = None
    if probe is None or probe.returncode != 0:
        checker.skipped.append("docker compose config (docker compose is not installed here)")
        return
    for files in FILE_SETS:
        args = (
            ["docker", "compose"]
            + [a for f in files for a in ("-f", f)]
            + ["--profile", "monitoring", "--profile", "tools", "config", "--quiet"]
        )
        result = subprocess.run(
            args, cwd=checker.root, check=False, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            checker.fail(
                " + ".join(files), f"`docker compose config` rejects it: {result.stderr.strip()}"
            )
        else:
            checker.passed.append(f"docker compose config accepts {' + '.join(files)}")


# Every combination the README gives a command for.
FILE_SETS = (
    [BASE_FILE],
    [BASE_FILE, SIM_FILE],
    [BASE_FILE, CLUSTER_FILE],
    [BASE_FILE, SIM_FILE, CLUSTER_FILE],
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    checker = Checker(args.root.resolve())

    sources = rust_sources(checker.root)
    env_names = {
        n for text in sources.values() for n in re.findall(r'"([A-Z][A-Z0-9_]*)"', text)
    } | IMPLICIT_ENV
    bins = workspace_binaries(checker)
    dockerfiles = {"Dockerfile": parse_dockerfile(checker, "Dockerfile")}
    check_binaries(checker, dockerfiles["Dockerfile"], bins)
    check_dockerignore(checker)

    base = compose_model(checker, [BASE_FILE])
    sim = compose_model(checker, [BASE_FILE, SIM_FILE])
    if base is not None:
        check_services(checker, BASE_FILE, base, dockerfiles, env_names)
        check_prometheus(checker, base, dockerfiles)
        uids = check_grafana_provisioning(checker, base)
        check_dashboards(checker, uids, sources)
    if sim is not None:
        check_services(checker, f"{BASE_FILE} + {SIM_FILE}", sim, dockerfiles, env_names)
    if base is not None and sim is not None:
        check_gpu_split(checker, base, sim)
    for files in FILE_SETS[2:]:
        model = compose_model(checker, files)
        if model is not None:
            check_services(checker, " + ".join(files), model, dockerfiles, env_names)
    run_docker_compose(checker)

    for line in checker.passed:
        print(f"  ok       {line}")
    for line in checker.skipped:
        print(f"  skipped  {line}")
    if checker.errors:
        print(f"\ncheck-compose: {len(checker.errors)} problem(s):", file=sys.stderr)
        for e in checker.errors:
            print(f"  FAIL     {e}", file=sys.stderr)
        return 1
    print(f"check-compose: {len(checker.passed)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
