"""cargo-pmcp itself against the pmcp.run simulator: a client nobody here wrote, as a second opinion.

Too slow for CI (building cargo-pmcp compiles 541 crates: about 45 minutes on two cores), so it is run by hand and its
result recorded in docs/simulator.md. It does two things:

1. Runs `cargo pmcp deploy status`, `deploy oauth status|enable` and `deploy destroy` against the simulator (a throwaway
   project directory, PMCP_API_URL + PMCP_ACCESS_TOKEN, SSL_CERT_FILE for the simulator's CA) and prints what they say.
2. Reads every GraphQL document in cargo-pmcp's source (from cargo's registry) and compares each with the operator's
   document of that name and the recorded contract, and validates it against the simulator's schema.

    cargo install cargo-pmcp --version 0.21.0 --locked --root ~/.cache/mcp-operator/cargo-pmcp
    PYTHONPATH=sim:operator:. .venv/bin/python hack/pmcp-run/second_opinion.py [path/to/cargo-pmcp]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphql import parse, validate
from tests.contract.test_pmcprunsim import OPERATIONS, shape

from mcp_operator.targets.pmcp_run.documents import DOCUMENTS
from pmcprunsim.server import load_schema
from pmcprunsim.testing import ELF, PmcpRunSimulatorThread, template

VERSION = "0.21.0"


def run_commands(cargo_pmcp: str) -> None:
    sim = PmcpRunSimulatorThread().start()
    world = sim.simulator.world
    try:
        def deploy() -> str:
            urls = world.upload_urls("calc", 1, 1)
            for key, data in ((urls["templateS3Key"], json.dumps(template("calc")).encode()), (urls["bootstrapS3Key"], ELF)):
                world.uploads[key].size, world.uploads[key].data = len(data), data
            return world.create_deployment({"templateS3Key": urls["templateS3Key"], "bootstrapS3Key": urls["bootstrapS3Key"],
                                            "projectName": "calc"}).id
        deployment = sim.call(deploy)
        project = Path(tempfile.mkdtemp(prefix="cargo-pmcp-project-"))
        (project / ".pmcp").mkdir()
        (project / "deploy").mkdir()  # cargo pmcp deploy destroy looks for it before it asks the API
        (project / "Cargo.toml").write_text('[package]\nname = "calc"\nversion = "1.0.0"\nedition = "2021"\n')
        (project / ".pmcp" / "deploy.toml").write_text('[target]\ntype = "pmcp-run"\nversion = "1"\n\n[server]\nname = '
                                                       '"calc"\n\n[environment]\n')
        env = {**os.environ, "PMCP_API_URL": sim.info["apiUrl"], "PMCP_ACCESS_TOKEN": sim.info["accessToken"],
               "SSL_CERT_FILE": sim.info["caBundle"], "HOME": str(project), "NO_COLOR": "1", "RUST_BACKTRACE": "0"}
        time.sleep(0.5)
        for args in (["deploy", "status", deployment], ["deploy", "status", deployment],
                     ["deploy", "oauth", "status", "--server", "calc"], ["deploy", "oauth", "enable", "--server", "calc"],
                     ["deploy", "oauth", "status", "--server", "calc"], ["deploy", "destroy", "--yes"],
                     ["deploy", "status", deployment]):
            done = subprocess.run([cargo_pmcp, "pmcp", *args], env=env, capture_output=True, text=True, timeout=120,
                                  cwd=project, check=False)
            print(f"$ cargo pmcp {' '.join(args)}  (exit {done.returncode})\n{done.stdout.strip()}\n{done.stderr.strip()}\n")
        print("left in the simulator:", sim.remaining() or "nothing")
        refused = [r for r in sim.simulator.requests if r.path == "/graphql" and r.status != 200]
        print("GraphQL requests refused:", len(refused))
    finally:
        sim.stop()


def compare_documents() -> None:
    registry = Path.home() / ".cargo" / "registry" / "src"
    source = next(registry.glob(f"*/cargo-pmcp-{VERSION}"), None)
    if source is None:
        print(f"cargo-pmcp {VERSION}'s source is not in {registry}")
        return
    found: dict[str, str] = {}
    for path in [*(source / "src/deployment/targets/pmcp_run").glob("*.rs"), source / "src/secrets/providers/pmcp_run.rs"]:
        for match in re.finditer(r'r#"(\s*(?:query|mutation)\s+(\w+).*?)"#', path.read_text(), re.S):
            found.setdefault(match.group(2), match.group(1))
    schema = load_schema()
    print(f"{len(found)} documents in cargo-pmcp {VERSION}")
    for name, document in sorted(found.items()):
        errors = validate(schema, parse(document))
        ours = "the operator's is the same" if name in DOCUMENTS and shape(DOCUMENTS[name]) == shape(document) else (
            "the operator sends none" if name not in DOCUMENTS else f"DIFFERS: {shape(DOCUMENTS[name])} vs {shape(document)}")
        recorded = OPERATIONS.get(name)
        same = recorded is not None and (recorded["variables"], recorded["selected"], recorded.get("items", [])) == tuple(
            shape(document)[2:])
        record = "not recorded" if recorded is None else "as recorded" if same else "DIFFERS from the record"
        print(f"  {name:30} schema: {'valid' if not errors else 'not in it'}; {ours}; {record}")


if __name__ == "__main__":
    binary = sys.argv[1] if len(sys.argv) > 1 else str(Path.home() / ".cache/mcp-operator/cargo-pmcp/bin/cargo-pmcp")
    compare_documents()
    if Path(binary).exists():
        run_commands(binary)
    else:
        print(f"no {binary}: cargo install cargo-pmcp --version {VERSION} --locked --root ~/.cache/mcp-operator/cargo-pmcp")
