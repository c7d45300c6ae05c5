"""`scatterfit config`: the documentation of the config file, generated from its schema."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--section", default=None, help="print only this section (e.g. terms)")


def run(args) -> None:
    from scatterfit.config.schema import SECTIONS, describe
    from scatterfit.errors import ScatterfitError

    text = describe()
    if args.section is not None:
        if args.section not in SECTIONS:
            raise ScatterfitError(f"unknown section '{args.section}' (known: {', '.join(SECTIONS)})")
        blocks = text.split("\n\n")
        text = "\n\n".join(b for b in blocks if b.startswith((f"[{args.section}]", f"[[{args.section}]]")))
    print(text)
