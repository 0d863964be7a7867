"""`bootstrap show|graph`: what a target builds, from what, and how far the store has got."""

from __future__ import annotations

import argparse
import sys

from bootstrap.cli.common import (
    add_target_options,
    open_store,
    plan_from_args,
    print_json,
    store_dir_from_args,
)
from bootstrap.graph_view import FORMATS, RENDERERS, graph_view
from bootstrap.plan_status import plan_entries, timing_report
from bootstrap.timings import markdown_table, model_lines, text_table


def register(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser(
        "show",
        help="list what a target builds, from what, and status",
        description="List every derivation of the target's stages in build order, with its "
        "status: built, substituted (taken from a binary cache), building (another process "
        "holds its lock), partial (an interrupted build left its work, which the next run "
        "continues) or missing.",
    )
    add_target_options(show)
    show.add_argument(
        "--timings",
        action="store_true",
        help="each build's wall and CPU seconds, then the critical path and core use",
    )
    show.add_argument(
        "--format",
        choices=["text", "markdown"],
        default="text",
        help="with --timings: a text table, or a Markdown one (docs/stages.md's)",
    )
    show.add_argument(
        "--model-cores",
        type=_core_counts,
        metavar="N[,N...]",
        help="with --timings: also the critical path as builders of N cores would run it, each "
        "build's time estimated from its recorded wall, CPU and cores (Amdahl's law), e.g. "
        "8,16,64",
    )
    show.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list: stage, name, drv, output, status, inputs and the recorded "
        "build time (wall and CPU seconds, cores; null if none) of each derivation",
    )
    show.set_defaults(func=run_show)

    graph = commands.add_parser(
        "graph",
        help="draw the build graph: stages as clusters, derivations coloured by status",
        description="Print the target's build graph: one cluster per stage, each derivation "
        "filled by its status (built, substituted, building, partial, missing), and only the "
        "edges no other chain of inputs implies (the transitive reduction) unless --all-edges. "
        "Render dot with Graphviz (`bootstrap graph | dot -Tsvg > graph.svg`).",
    )
    add_target_options(graph)
    graph.add_argument(
        "--format", choices=FORMATS, default="dot", help="Graphviz dot (default), Mermaid, JSON"
    )
    graph.add_argument("--json", action="store_true", help="same as --format json")
    graph.add_argument(
        "--all-edges",
        action="store_true",
        help="draw every input edge, the implied ones grey and dashed (dotted in Mermaid)",
    )
    graph.set_defaults(func=run_graph)


def run_show(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, store_dir_from_args(args))  # recipe errors first
    store = open_store(args, create=False)
    if args.timings and not args.json:
        report = timing_report(store, plan)
        print(markdown_table(report) if args.format == "markdown" else text_table(report))
        bullet = "- " if args.format == "markdown" else ""
        for line in model_lines(report.steps, args.model_cores or ()):
            print(f"{bullet}{line}")
        return 0
    entries = plan_entries(store, plan)
    if args.json:
        times = {step.drv: step.time for step in timing_report(store, plan).steps}
        print_json([{**e.to_json(), "time": _time_json(times.get(e.drv))} for e in entries])
        return 0
    width = max([len("package"), *(len(e.name) for e in entries)])
    lines = [f"{'stage':<10} {'package':<{width}} {'status':<11} output"]
    lines += [f"{e.stage:<10} {e.name:<{width}} {e.status:<11} {e.output}" for e in entries]
    print("\n".join(lines))
    return 0


def _core_counts(text: str) -> list[int]:
    """`8,16,64` -> [8, 16, 64]."""
    parts = text.split(",")
    if not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected core counts such as 8,16,64; got {text!r}")
    return [int(part) for part in parts]


def _time_json(time) -> dict | None:
    if time is None:
        return None
    return {"wall": time.wall, "cpu": time.cpu, "cores": time.cores, "builtAt": time.built_at}


def run_graph(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, store_dir_from_args(args))
    view = graph_view(plan_entries(open_store(args, create=False), plan))
    render = RENDERERS["json" if args.json else args.format]
    sys.stdout.write(render(view, all_edges=args.all_edges))
    return 0
