"""`scatterfit status JOB --server URL`: a job's state and progress (its verdict when done)."""

from __future__ import annotations

from scatterfit.errors import ScatterfitError


def add_arguments(p) -> None:
    p.add_argument("job", help="the job id that submit printed")
    p.add_argument("--server", required=True, help="the server's URL, e.g. http://127.0.0.1:8765")
    p.add_argument("--token-file", default=None, help="file holding the API token (default: SCATTERFIT_API_TOKEN)")
    p.add_argument("--wait", action="store_true", help="wait until the job ends")


def print_status(status: dict) -> None:
    progress = status.get("progress") or {}
    line = f"{status['id']}: {status['state']}"
    if status["state"] == "running" and progress.get("total"):
        line += f" ({progress['step']} {progress['done']}/{progress['total']}, {progress.get('elapsed_s', 0):.0f} s)"
    if status.get("error"):
        line += f": {status['error']}"
    print(line)
    solution = status.get("solution") or {}
    verdict = solution.get("verdict")
    if verdict:
        print(f"best: {verdict.get('best')}" + (f"; runner-up {verdict['runner_up']} at ΔBIC {verdict['delta_bic']:.1f}"
                                                  if verdict.get("runner_up") else ""))


def run(args) -> None:
    from scatterfit.commands.serve import read_token
    from scatterfit.service.client import Client

    client = Client(args.server, read_token(args.token_file))
    status = client.wait(args.job) if args.wait else client.status(args.job)
    print_status(status)
    if status["state"] == "failed":
        raise ScatterfitError(f"job {args.job} failed: {status.get('error')}")
