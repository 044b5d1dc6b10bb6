"""Generate Python code from the contracts under ``api/`` into ``src/``.

Everything generated lives in one package, ``tidings.api``, committed and never edited by hand:

- protoc's: messages and gRPC stubs (``tidings.api.<service>.v1``, and ``tidings.api.buf.validate`` from
  ``api/third_party``);
- ours: typed error helpers, one module per service (``tidings.api.<service>.v1.errors``), made from the
  ``ErrorReason`` enum of its ``error_reason.proto`` as protoc compiled it (the descriptor set, not the .proto text),
  and ``tidings.api.reasons``, every reason of every contract in one table.

protoc names a Python module after its .proto path (``tidings/chat/v1/chat.proto`` -> ``tidings.chat.v1``) and has
no option to put it below a prefix, so its output is moved under ``tidings/api/`` and its import lines are rewritten
to match (as protovalidate does for its own ``buf.validate``). The .proto paths and packages, and so the wire, stay
as they are.

``--check`` regenerates into a scratch folder and fails, naming the files, when the committed ones differ: a
contract changed without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
GENERATED_HEADER = '"""Generated from api/ by scripts/protogen.py. Do not edit."""\n'
# The enum-value options of api/tidings/errors/v1/errors.proto.
CODE_OPTION = "tidings.errors.v1.code"
DEFAULT_CODE_OPTION = "tidings.errors.v1.default_code"
# The source-info path of an enum value's comments: (enum_type, enum index, value, value index).
ENUM_TYPE_FIELD = descriptor_pb2.FileDescriptorProto.ENUM_TYPE_FIELD_NUMBER
ENUM_VALUE_FIELD = descriptor_pb2.EnumDescriptorProto.VALUE_FIELD_NUMBER
# The one package of generated code; protoc's module paths (`tidings.chat.v1`, `buf.validate`) move below it.
GENERATED = Path("tidings", "api")
# A module path in an import line, a stub's dotted reference or the module name given to protobuf's builder; never
# inside a serialized descriptor, where the package name follows a length byte, not a quote, space or line start.
PROTOC_MODULE = re.compile(r"(?<![\w.])(tidings\.(?!api\.)\w+\.v1|buf\.validate)(?=\.\w+_pb2|\s+import\s)")


@dataclass(frozen=True)
class Tree:
    """Where the contracts and the code live: the repository, or a copy of it in tests."""

    root: Path

    @property
    def api(self) -> Path:
        return self.root / "api"

    @property
    def third_party(self) -> Path:
        return self.api / "third_party"

    @property
    def src(self) -> Path:
        return self.root / "src"

    def protos(self) -> list[str]:
        """Every contract, by its import path: ours under ``api/tidings``, the vendored ones under third_party."""
        ours = [str(path.relative_to(self.api)) for path in sorted((self.api / "tidings").rglob("*.proto"))]
        vendored = [str(path.relative_to(self.third_party)) for path in sorted(self.third_party.rglob("*.proto"))]
        return ours + vendored


@dataclass(frozen=True)
class Reason:
    name: str
    code: int
    doc: str


@dataclass(frozen=True)
class ReasonEnum:
    """The ``ErrorReason`` enum of one service's contracts."""

    package: str
    source: str
    reasons: list[Reason]

    @property
    def service(self) -> str:
        return self.package.split(".")[1]


def run_protoc(tree: Tree, out: Path, descriptor_set: Path) -> list[Path]:
    """Compile every contract into ``out/tidings/api`` and the descriptor set; return the files written."""
    well_known = str(files("grpc_tools").joinpath("_proto"))
    plugins = Path(sys.executable).parent  # mypy-protobuf's plugins live beside this interpreter
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch)
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"-I{tree.api}",
            f"-I{tree.third_party}",
            f"-I{well_known}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            f"--descriptor_set_out={descriptor_set}",
            "--include_imports",
            "--include_source_info",
            *tree.protos(),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = [_move_below_api(path, raw, out) for path in raw.rglob("*") if path.is_file()]
    # A package marker for every generated folder.
    for leaf in {path.parent for path in written}:
        for folder in [leaf, *leaf.parents]:
            if folder == out / "tidings":
                break
            marker = folder / "__init__.py"
            if not marker.exists():
                marker.write_text(GENERATED_HEADER, encoding="utf-8")
                written.append(marker)
    return written


def _move_below_api(path: Path, raw: Path, out: Path) -> Path:
    """Write protoc's ``raw/<module path>`` to ``out/tidings/api/...``, its module paths rewritten to match."""
    rel = path.relative_to(raw)
    moved = out / GENERATED / (rel.relative_to("tidings") if rel.parts[0] == "tidings" else rel)
    moved.parent.mkdir(parents=True, exist_ok=True)
    text = PROTOC_MODULE.sub(lambda match: f"tidings.api.{match[1].removeprefix('tidings.')}", path.read_text())
    moved.write_text(text, encoding="utf-8")
    return moved


def error_reasons(descriptor_set: bytes) -> list[ReasonEnum]:
    """The ``ErrorReason`` enums of our packages, each value with its code option (or the enum's default)."""
    compiled = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    # A pool of their own lets the options be re-read with our extensions known, without importing generated code.
    pool = descriptor_pool.DescriptorPool()
    for file in compiled.file:
        pool.Add(file)
    classes = message_factory.GetMessageClassesForFiles([file.name for file in compiled.file], pool)
    code, default_code = pool.FindExtensionByName(CODE_OPTION), pool.FindExtensionByName(DEFAULT_CODE_OPTION)
    enum_options = classes["google.protobuf.EnumOptions"]
    value_options = classes["google.protobuf.EnumValueOptions"]

    enums = []
    for file in compiled.file:
        if not file.package.startswith("tidings."):
            continue
        comments = {tuple(location.path): location.leading_comments for location in file.source_code_info.location}
        for enum_index, enum in enumerate(file.enum_type):
            if enum.name != "ErrorReason":
                continue
            default = enum_options.FromString(enum.options.SerializeToString()).Extensions[default_code]
            reasons = []
            for value_index, value in enumerate(enum.value):
                if value.number == 0:
                    continue  # ERROR_REASON_UNSPECIFIED: proto3's required zero value, not a reason
                value_code = value_options.FromString(value.options.SerializeToString()).Extensions[code] or default
                if not value_code:
                    raise SystemExit(f"{file.name}: {value.name} has no code and the enum no default_code")
                doc = comments.get((ENUM_TYPE_FIELD, enum_index, ENUM_VALUE_FIELD, value_index), "")
                reasons.append(Reason(value.name, value_code, " ".join(doc.split())))
            enums.append(ReasonEnum(file.package, file.name, reasons))
    _check_unique(enums)
    return enums


def _check_unique(enums: list[ReasonEnum]) -> None:
    """A reason is the string clients match on, so it must mean one thing across all services."""
    owners: dict[str, str] = {}
    for enum in enums:
        for reason in enum.reasons:
            if reason.name in owners:
                raise SystemExit(f"error reason {reason.name} is in both {owners[reason.name]} and {enum.source}")
            owners[reason.name] = enum.source


def _docstring(text: str, indent: str) -> str:
    lines = textwrap.wrap(text, width=116 - len(indent))
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""\n'
    body = f"\n{indent}".join(lines)
    return f'{indent}"""{body}\n{indent}"""\n'


def render_helpers(enum: ReasonEnum) -> str:
    """The module ``tidings.api.<service>.v1.errors``: a ``Reason`` per value, a constructor and a test for each."""
    constants = "".join(f'{r.name} = Reason(DOMAIN, "{r.name}", {r.code})\n' for r in enum.reasons)
    listed = "".join(f"    {r.name},\n" for r in enum.reasons)
    functions = ""
    for r in enum.reasons:
        helper = r.name.lower()
        doc = f"{r.doc} ({r.code})" if r.doc else f"{r.name} ({r.code})."
        functions += (
            f"\n\ndef {helper}(message: str, /, **metadata: str) -> TidingsError:\n"
            f"{_docstring(doc, '    ')}"
            f"    return {r.name}.error(message, **metadata)\n"
            f"\n\ndef is_{helper}(error: BaseException | None) -> bool:\n"
            f'    """Whether ``error`` is {r.name}."""\n'
            f"    return {r.name}.matches(error)\n"
        )
    return (
        f"{GENERATED_HEADER}\n"
        f"# The error reasons of {enum.package}, from api/{enum.source}.\n"
        "from __future__ import annotations\n\n"
        "from tidings.pkg.errors.base import Reason, TidingsError\n\n"
        f'DOMAIN = "{enum.package}"\n\n'
        f"{constants}\n"
        f"REASONS = (\n{listed})\n"
        f"{functions}"
    )


def render_table(enums: list[ReasonEnum]) -> str:
    """The module ``tidings.api.reasons``: every reason of every contract, by (domain, name)."""
    imports = "".join(
        f"from tidings.api.{enum.service}.v1 import errors as {enum.service}\n"
        for enum in sorted(enums, key=lambda e: e.service)
    )
    modules = ", ".join(sorted(enum.service for enum in enums))
    return (
        f"{GENERATED_HEADER}\n"
        "from __future__ import annotations\n\n"
        f"{imports}"
        "from tidings.pkg.errors.base import Reason\n\n"
        "# Every reason a contract declares, by its proto package and name: how an error from the wire finds its own.\n"
        "BY_DOMAIN_AND_NAME: dict[tuple[str, str], Reason] = {\n"
        f"    (reason.domain, reason.name): reason for module in ({modules}) for reason in module.REASONS\n"
        "}\n"
    )


def generate(tree: Tree, out: Path) -> list[Path]:
    """Write everything generated into ``out`` (laid out like ``src``); return the files, relative to ``out``."""
    with tempfile.TemporaryDirectory() as scratch:
        descriptor_set = Path(scratch) / "contracts.binpb"
        written = run_protoc(tree, out, descriptor_set)
        enums = error_reasons(descriptor_set.read_bytes())
    for enum in enums:
        module = out / GENERATED / enum.service / "v1" / "errors.py"
        module.write_text(render_helpers(enum), encoding="utf-8")
        written.append(module)
    table = out / GENERATED / "reasons.py"
    table.write_text(render_table(enums), encoding="utf-8")
    written.append(table)
    return sorted(path.relative_to(out) for path in written)


def committed(tree: Tree) -> set[Path]:
    """The files now in ``src/tidings/api``, relative to ``src``: everything there is generated."""
    return {path.relative_to(tree.src) for path in (tree.src / GENERATED).rglob("*") if path.suffix in (".py", ".pyi")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (tests point this at a copy)")
    args = parser.parse_args(argv)
    tree = Tree(args.root.resolve())
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        generated = set(generate(tree, fresh))
        changed = sorted(
            rel
            for rel in generated
            if not (tree.src / rel).exists() or not filecmp.cmp(fresh / rel, tree.src / rel, shallow=False)
        )
        orphaned = sorted(committed(tree) - generated)
        if args.check:
            if changed or orphaned:
                names = "\n  ".join(str(rel) for rel in [*changed, *orphaned])
                print(f"generated code is stale; run `make proto`:\n  {names}", file=sys.stderr)
                return 1
            print(f"generated code is up to date ({len(generated)} files)")
            return 0
        for rel in changed:
            (tree.src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / rel, tree.src / rel)
        for rel in orphaned:
            (tree.src / rel).unlink()
    print(f"{len(changed)} generated files written, {len(orphaned)} removed, from {len(tree.protos())} contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
