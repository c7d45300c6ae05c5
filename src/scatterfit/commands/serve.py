"""`scatterfit serve`: the HTTP service (service/app.py) with its job queue under --data-dir."""

from __future__ import annotations

import os
from pathlib import Path

from scatterfit.errors import ScatterfitError

LOCAL = ("127.0.0.1", "localhost", "::1")


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (localhost unless told otherwise)")
    p.add_argument("--port", type=int, default=8765, help="TCP port")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once")
    p.add_argument("--data-dir", default="scatterfit_service", help="the job database and the jobs' folders")
    p.add_argument("--token-file", default=None,
                   help="file holding the API token (default: the environment variable SCATTERFIT_API_TOKEN)")
    p.add_argument("--no-auth", action="store_true", help="no token (allowed only when bound to localhost)")
    p.add_argument("--executor", default=None,
                   help="where solves run their hypotheses, e.g. dask://host:8786 (default: the job's process)")
    p.add_argument("--max-upload-mb", type=float, default=64.0, help="largest uploaded file, MB")
    p.add_argument("--max-request-mb", type=float, default=256.0, help="largest request (all its files), MB")


def read_token(token_file) -> str | None:
    if token_file:
        path = Path(token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ScatterfitError(f"{path}: cannot read the token file ({exc.strerror or exc})") from None
        if not token:
            raise ScatterfitError(f"{path}: the token file is empty")
        return token
    return os.environ.get("SCATTERFIT_API_TOKEN", "").strip() or None


def run(args) -> None:
    from scatterfit.errors import require
    from scatterfit.report.files import OutputLock, check_output_dir

    uvicorn = require("uvicorn", "scatterfit serve")
    from scatterfit.service.app import Limits, create_app

    if args.workers < 1:
        raise ScatterfitError("--workers must be at least 1")
    token = None if args.no_auth else read_token(args.token_file)
    if args.no_auth and args.host not in LOCAL:
        raise ScatterfitError(f"--no-auth is allowed only on localhost, not on {args.host}")
    if token is None and not args.no_auth:
        raise ScatterfitError("no API token: set SCATTERFIT_API_TOKEN or give --token-file (or --no-auth on "
                              "localhost)")
    data_dir = check_output_dir(args.data_dir, what="data directory")
    limits = Limits(max_file_bytes=int(args.max_upload_mb * 2**20), max_request_bytes=int(args.max_request_mb * 2**20))
    with OutputLock(data_dir):  # one server per data directory
        app = create_app(data_dir, token, workers=args.workers, executor=args.executor, limits=limits)
        print(f"scatterfit serve: http://{args.host}:{args.port}/ (data in {data_dir}, {args.workers} worker(s))",
              flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
