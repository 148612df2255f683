"""The ``plm-nasbench`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .architecture import MODELS, TASK_HEADS, get_architecture
from .paths import data_dir
from .spaces import SEARCH_SPACES, get_search_space


def _magnitude(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"~10^{len(str(n)) - 1}"


def _info(args: argparse.Namespace) -> int:
    print(f"plm_nasbench {__version__}\n")
    print("Models (parameters with a 2-label classification head):")
    for name, spec in MODELS.items():
        try:
            a = get_architecture(name)
            dims = (f"L={a.num_layers} H={a.num_heads} head_size={a.head_size} I={a.intermediate_size}, "
                    f"{a.total_parameters():,} parameters")
        except FileNotFoundError as err:
            dims = f"unavailable: {err}"
        default = " (default)" if name == "minilm-l6-h384" else ""
        print(f"  {name}{default}: {dims}; source: {spec.source} ({spec.location})")
    print(f"\nSearch spaces (on {args.model}):")
    for name in SEARCH_SPACES:
        space = get_search_space(name, args.model)
        print(f"  {name}: {_magnitude(space.num_configs)} configs, encoding length {space.encoding_size}; "
              f"{type(space).__doc__.strip().splitlines()[0].replace('``', '')}")
    print("\nTasks:")
    for task, head in TASK_HEADS.items():
        kind = "regression" if head.is_regression else f"{head.kind} ({head.num_outputs} outputs)"
        print(f"  {task}: {kind}")
    folder = data_dir()
    manifest = folder / "MANIFEST.json"
    print(f"\nTables in {folder}:")
    if not manifest.is_file():
        print("  none yet (no MANIFEST.json)")
    else:
        for name, entry in sorted(json.loads(manifest.read_text()).get("files", {}).items()):
            print(f"  {name}: {entry.get('rows', '?')} rows")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``plm-nasbench``."""
    parser = argparse.ArgumentParser(
        prog="plm-nasbench",
        description="Benchmark for multi-objective NAS as structural pruning of fine-tuned language models.",
    )
    parser.add_argument("--version", action="version", version=f"plm_nasbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", help="list models, search spaces, tasks and the tables present")
    info.add_argument("--model", default="minilm-l6-h384", choices=sorted(MODELS),
                      help="model whose search spaces are described (default: %(default)s)")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``plm-nasbench``."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
