"""`scatterfit submit DATA... --composition X --server URL`: queue a solve on a scatterfit server; prints the
job id (with --wait, waits and prints the verdict)."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("data", nargs="+", help="data files (and candidate CIFs) of one sample")
    p.add_argument("--composition", required=True,
                   help='a formula ("TiO2"), the elements ("Ti O") or compounds ("ZnS + Ni")')
    p.add_argument("--server", required=True, help="the server's URL, e.g. http://127.0.0.1:8765")
    p.add_argument("--token-file", default=None, help="file holding the API token (default: SCATTERFIT_API_TOKEN)")
    p.add_argument("--qmax", type=float, default=None, help="Qmax of the data, Å⁻¹, when the header has none")
    p.add_argument("--budget", type=float, default=None, help="seconds after which no new hypothesis starts")
    p.add_argument("--radiation", choices=("xray", "neutron"), default=None,
                   help="the data's radiation when the files do not say")
    p.add_argument("--label", default="", help="a label to list the job by")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its verdict")


def run(args) -> None:
    from scatterfit.commands.serve import read_token
    from scatterfit.commands.status import print_status
    from scatterfit.service.client import Client

    client = Client(args.server, read_token(args.token_file))
    hints = {k: v for k, v in (("qmax", args.qmax), ("budget", args.budget), ("radiation", args.radiation))
             if v is not None}
    job = client.submit(args.data, args.composition, label=args.label, **hints)
    print(job, flush=True)
    if args.wait:
        print_status(client.wait(job))
