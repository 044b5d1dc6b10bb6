"""Write deploy/kubernetes/configmap.yaml, the ConfigMap ``tidings-config``, from configs/production.example.yaml.

The ConfigMap carries the file as it is (key ``tidings.yaml``, mounted at /etc/tidings/tidings.yaml); what differs
per pod (secrets, the pod's own address, the job's groups) comes from TIDINGS_* variables in the Deployments.
Generated rather than kept by hand so the two never drift; ``--check`` fails when the committed ConfigMap is stale.
Written by hand because ``kubectl create configmap --dry-run=client -o yaml`` needs kubectl, which the checks do not
install, and a YAML dump would fold the file's comments away.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "configs" / "production.example.yaml"
TARGET = ROOT / "deploy" / "kubernetes" / "configmap.yaml"
HEADER = """\
# Generated from configs/production.example.yaml by scripts/deployconfig.py (make deploy-config). Do not edit.
# After a change: make deploy-config, kubectl apply -k deploy/kubernetes, then kubectl -n tidings rollout restart
# deployment (a mounted file changes in place, but the processes read it only at start).
"""


def render(source: str) -> str:
    """The ConfigMap manifest whose ``tidings.yaml`` is ``source``, verbatim (a literal block scalar)."""
    body = "".join(f"    {line}" if line.strip() else "\n" for line in source.splitlines(keepends=True))
    return (
        HEADER
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tidings-config\n  namespace: tidings\n"
        + "  labels:\n    app.kubernetes.io/name: tidings\n    app.kubernetes.io/component: config\n"
        + "data:\n  tidings.yaml: |\n"
        + body
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed ConfigMap is stale")
    args = parser.parse_args()
    wanted = render(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != wanted:
            print(f"{TARGET.relative_to(ROOT)} is stale: run make deploy-config", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
