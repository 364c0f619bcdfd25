"""``harness list`` and ``harness show``: the specs, and the networks they define, without running anything."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.cli.options import console, specs_argument
from harness.specs.spec import SpecError, load_specs, spec_paths

FOLDERS = ("experiments", "experiments/studies", "experiments/peer")  # the suite, the studies, the peer benchmark


def cmd_list(args) -> int:
    """Every spec (by default the suite's, the studies' and the peer benchmark's), validated, with its folder."""
    folders = args.specs or [FOLDERS[0], *(f for f in FOLDERS[1:] if Path(f).is_dir())]
    specs = load_specs(folders)
    table = Table(title=" ".join(folders))
    for col in ("name", "folder", "kind", "refs", "seeds", "devices", "title"):
        table.add_column(col)
    for path, s in zip(spec_paths(folders), specs):
        table.add_row(s.name, str(path.parent), s.kind, " ".join(s.ref_ids), ",".join(map(str, s.seeds)),
                      ",".join(s.devices), s.title)
    console.print(table)
    return 0


def cmd_show(args) -> int:
    """Each spec's network, layer by layer: output shape, parameters and forward FLOP (torch.utils.flop_counter).

    A block is one row; ``--depth N`` opens blocks N levels down, their modules indented under them.
    """
    from harness.book import nets

    specs = [s for s in load_specs(args.specs) if getattr(s.settings, "model", None) is not None]
    if not specs:
        raise SpecError(f"{', '.join(args.specs)}: no spec here defines a network (settings.model)")
    for spec in specs:
        model = spec.settings.model
        shape = getattr(spec.settings, "input_shape", None) or nets.input_shape(model)
        rows = nets.layer_tree(model, shape, args.depth)
        table = Table(title=f"{spec.name}: {nets.describe(model)} on 1x{'x'.join(map(str, shape))}",
                      title_justify="left")
        for col in ("layer", "type", "output shape", "parameters", "forward MFLOP"):
            table.add_column(col, justify="left" if col in ("layer", "type", "output shape") else "right")
        for r in rows:
            indent = "  " * r["depth"]
            table.add_row(indent + r["layer"], indent + r["type"], "x".join(map(str, r["output shape"])),
                          f"{r['parameters']:,}", f"{r['forward FLOP'] / 1e6:,.2f}",
                          style="dim" if r["depth"] else None)
        top = [r for r in rows if r["depth"] == 0]
        table.add_row("", "total", "", f"{sum(r['parameters'] for r in top):,}",
                      f"{sum(r['forward FLOP'] for r in top) / 1e6:,.2f}", end_section=True)
        console.print(table)
    return 0


def setup_arguments(sub) -> None:
    ls = sub.add_parser("list", help="list the specs and what they reproduce")
    ls.add_argument("specs", nargs="*", metavar="SPEC", help="spec files or directories of them (default: "
                    f"{', '.join(FOLDERS)})")
    ls.set_defaults(func=cmd_list)
    sh = sub.add_parser("show", help="print the network of each spec: output shape, parameters, FLOP per layer")
    specs_argument(sh)
    sh.add_argument("--depth", type=int, default=0, metavar="N",
                    help="open each block N levels down (residual blocks, dense blocks, inception...); default 0")
    sh.set_defaults(func=cmd_show)
