"""Generate Python code from the contracts under ``api/`` into ``src/`` (``tidings.<service>.v1``).

Generated files are committed and never edited by hand. ``--check`` regenerates into a scratch folder and
fails, naming the files, when the committed ones differ: a contract changed without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "api"
SRC = ROOT / "src"
GENERATED_HEADER = '"""Generated from api/ by scripts/protogen.py. Do not edit."""\n'


def protos() -> list[Path]:
    return sorted((API / "tidings").rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Run protoc for every contract into ``out``; return the files written, relative to ``out``."""
    sources = [str(path.relative_to(API)) for path in protos()]
    if not sources:
        return []
    well_known = str(files("grpc_tools").joinpath("_proto"))
    plugins = Path(sys.executable).parent  # mypy-protobuf's plugins live beside this interpreter
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"-I{API}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = [path for path in out.rglob("*") if path.is_file()]
    # Package markers for every generated folder below the existing ``tidings`` package.
    for leaf in {path.parent for path in written}:
        for folder in [leaf, *leaf.parents]:
            if folder in (out, out / "tidings"):
                break
            marker = folder / "__init__.py"
            if not marker.exists():
                marker.write_text(GENERATED_HEADER, encoding="utf-8")
                written.append(marker)
    return sorted(path.relative_to(out) for path in written)


def committed() -> set[Path]:
    """The generated files now in ``src/``, relative to it: protoc's ``*_pb2*`` and ours, which carry the header."""
    return {
        path.relative_to(SRC)
        for path in (SRC / "tidings").rglob("*")
        if path.is_file() and ("_pb2" in path.name or path.read_bytes().startswith(GENERATED_HEADER.encode()))
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        generated = set(generate(fresh))
        changed = sorted(
            rel
            for rel in generated
            if not (SRC / rel).exists() or not filecmp.cmp(fresh / rel, SRC / rel, shallow=False)
        )
        orphaned = sorted(committed() - generated)
        if check:
            if changed or orphaned:
                names = "\n  ".join(str(rel) for rel in [*changed, *orphaned])
                print(f"generated code is stale; run `make proto`:\n  {names}", file=sys.stderr)
                return 1
            print(f"generated code is up to date ({len(generated)} files)")
            return 0
        for rel in changed:
            (SRC / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / rel, SRC / rel)
        for rel in orphaned:
            (SRC / rel).unlink()
    print(f"{len(changed)} generated files written, {len(orphaned)} removed, from {len(protos())} contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
