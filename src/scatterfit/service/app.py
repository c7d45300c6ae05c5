"""`scatterfit serve`: the HTTP API (FastAPI) over the job queue, and the results page.

    GET    /v1/health                 no token: {"status": "ok", "version", "schema_version"}
    POST   /v1/jobs                   multipart: files (the data files; CIFs of candidate structures) and a JSON
                                      field `request`: {"kind": "solve", "composition", "qmax", "qmin", "budget",
                                      "radiation", "qdamp", "qbroad", "density" ("2.2 g/cm3"),
                                      "in_solution" (true/false), "temperature" (K), "label"}
                                      or {"kind": "refine", "config": TOML text naming the uploaded files}
    GET    /v1/jobs                   ?state=&kind=&limit=&offset=: newest first
    GET    /v1/jobs/{id}              state (queued, running, done, failed, cancelled) and progress
    GET    /v1/jobs/{id}/solution     a solve's solution.json (a refine's summary.json)
    GET    /v1/jobs/{id}/report       a solve's report.html
    GET    /v1/jobs/{id}/files        the names of the job's result files
    GET    /v1/jobs/{id}/files/{name} one result file
    GET    /v1/jobs/{id}/archive      the job's whole folder as a zip
    DELETE /v1/jobs/{id}              cancel
    GET    /                          the results page (asks for the token in the browser)

Every call but /v1/health and / needs `Authorization: Bearer <token>` (compared in constant time). Uploads are
limited in count and size and checked for name and type before anything parses them; a file name from a request
is used only when it is a plain name (no folders), and a refine config only when every path in it is one of
the uploaded files. Every error is a 4xx with a JSON body {"detail": ...}.
"""

from __future__ import annotations

import hmac
import io
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from scatterfit.service.dispatcher import Dispatcher, job_dir
from scatterfit.service.store import SCHEMA_VERSION, STATES, JobStore, new_job_id

API_VERSION = "v1"
DATA_SUFFIXES = {".gr", ".fgr", ".iq", ".sq", ".fq", ".mint01", ".xy", ".xye", ".chi", ".dat", ".csv", ".txt",
                 ".xrdml", ".gsa", ".gss", ".fxye", ".pdcif", ".rtv"}
STRUCTURE_SUFFIXES = {".cif", ".mcif", ".xyz", ".extxyz", ".pdb"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
JOB_ID = PathParam(..., pattern=r"^[0-9a-f]{16}$", description="the id POST /v1/jobs returned")
SNIFF = 65536  # bytes read to decide that an upload is text


class Limits(BaseModel):
    """Upload limits of a server."""

    max_files: int = 16
    max_file_bytes: int = 64 * 2**20
    max_request_bytes: int = 256 * 2**20


class Progress(BaseModel):
    step: str | None = None
    done: int | None = None
    total: int | None = None
    text: str | None = None
    best_rw: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None


class JobStatus(BaseModel):
    id: str
    kind: str
    state: str
    label: str = ""
    created: float
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    attempts: int = 0
    request: dict = Field(default_factory=dict)
    progress: Progress | None = None


class JobList(BaseModel):
    jobs: list[JobStatus]


class Health(BaseModel):
    status: str
    version: str
    schema_version: int


class FileList(BaseModel):
    files: list[str]


class Problem(BaseModel):
    """Every error's body: one line saying what was wrong."""

    detail: str


def errors(*codes: int) -> dict:
    """OpenAPI responses of the given error codes (422 always: every route validates its parameters)."""
    return {code: {"model": Problem} for code in sorted({*codes, 422})}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 — by its Content-Length at once, and
    by counting as it arrives when it has none (chunked), before the multipart parser spools it to disk."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        state = {"seen": 0, "over": False, "started": False}

        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.limit:
                    state["over"] = True
                    raise _TooLarge()
            return message

        async def tracked(message):
            if state["over"]:  # whatever the parser made of the cut body, the answer is 413
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._refuse(send)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not state["started"]:
                state["started"] = True
                await self._refuse(send)

    async def _refuse(self, send):
        body = json.dumps({"detail": f"request larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _bad(status: int, detail: str):
    return HTTPException(status_code=status, detail=detail)


def _progress(folder: Path) -> Progress | None:
    try:
        return Progress(**json.loads((folder / "status.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _status(job, data_dir: Path) -> JobStatus:
    return JobStatus(**{k: v for k, v in job.as_dict().items()}, progress=_progress(job_dir(data_dir, job.id)))


def _check_name(name: str | None) -> str:
    if not name or not NAME.match(name) or ".." in name:
        raise _bad(400, f"file name {name!r}: use a plain name of letters, digits, '.', '_' and '-' (no folders)")
    return name


def _check_text(name: str, head: bytes) -> None:
    if b"\x00" in head:
        raise _bad(415, f"{name}: not a text file (scatterfit reads text data and structure files)")


def _check_config(text: str, uploaded: set) -> None:
    """A refine config is run only when it parses, names only uploaded files, and asks for nothing the server
    decides (executor) or that imports code (an ASE calculator by module path)."""
    import tomllib

    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(422, f"request.config: not valid TOML ({exc})") from None

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}.{key}" if where else key
                if key in ("executor", "calculator"):
                    raise _bad(422, f"request.config: {here} is set by the server, not by a job")
                if key in ("file", "files"):
                    names = value if isinstance(value, list) else [value]
                    for name in names:
                        if not isinstance(name, str) or name not in uploaded:
                            raise _bad(422, f"request.config: {here} = {name!r} is not one of the uploaded files")
                walk(value, here)
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, f"{where}[{k}]")
        elif isinstance(node, str) and ("/" in node or "\\" in node or node.startswith("~") or node == ".."):
            raise _bad(422, f"request.config: {where} = {node!r}: paths are not allowed (name uploaded files)")

    walk(tree, "")
    if "datasets" not in tree:
        raise _bad(422, "request.config: no [[datasets]]")


def _check_request(raw: str) -> dict:
    try:
        request = json.loads(raw)
    except ValueError:
        raise _bad(422, "request: not valid JSON") from None
    if not isinstance(request, dict):
        raise _bad(422, "request: must be a JSON object")
    kind = request.get("kind")
    if kind not in ("solve", "refine"):
        raise _bad(422, "request.kind: must be 'solve' or 'refine'")
    allowed = {"solve": {"kind", "composition", "qmax", "qmin", "budget", "radiation", "qdamp", "qbroad", "density",
                         "in_solution", "temperature", "label"},
               "refine": {"kind", "config", "label"}}
    unknown = set(request) - allowed[kind]
    if unknown:
        raise _bad(422, f"request: unknown key(s) for a {kind} job: {', '.join(sorted(unknown))}")
    if not isinstance(request.get("label", ""), str) or len(request.get("label", "")) > 200:
        raise _bad(422, "request.label: a string of at most 200 characters")
    for key in ("qmax", "budget"):
        value = request.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
                                  or value > 1e7):
            raise _bad(422, f"request.{key}: a positive number")
    for key in ("qmin", "temperature"):  # checked as solve checks them
        if request.get(key) is not None:
            from scatterfit.errors import ScatterfitError
            from scatterfit.solve.inputs import checked_qmin, checked_temperature

            try:
                if key == "qmin":
                    checked_qmin(request[key], request.get("qmax"))
                else:
                    checked_temperature(request[key])
            except ScatterfitError as exc:
                raise _bad(422, f"request.{exc}") from None
    calibration = {k: request[k] for k in ("qdamp", "qbroad") if request.get(k) is not None}
    if calibration:  # the instrument's calibration (solve --qdamp/--qbroad), checked where solve checks it
        from scatterfit.errors import ScatterfitError
        from scatterfit.solve.hypotheses import checked_calibration

        try:
            checked_calibration(calibration)
        except ScatterfitError as exc:
            raise _bad(422, f"request: {exc}") from None
    if not isinstance(request.get("in_solution", False), bool):
        raise _bad(422, "request.in_solution: true or false")
    if request.get("radiation") not in (None, "xray", "neutron"):
        raise _bad(422, "request.radiation: 'xray' or 'neutron'")
    if kind == "solve":
        composition = request.get("composition")
        if not isinstance(composition, str) or not composition.strip() or len(composition) > 200:
            raise _bad(422, "request.composition: a formula ('TiO2'), elements ('Ti O') or compounds ('ZnS + Ni') "
                            "is required")
        from scatterfit.errors import ScatterfitError
        from scatterfit.structure.library import candidates

        try:
            candidates(composition)
        except ScatterfitError as exc:
            raise _bad(422, f"request.composition: {exc}") from None
        density = request.get("density")
        if density is not None:  # a string with its unit or a number in g/cm³ (solve --density)
            from scatterfit.solve.inputs import number_density

            if isinstance(density, bool) or not isinstance(density, (str, int, float)) or len(str(density)) > 50:
                raise _bad(422, "request.density: a number (g/cm³) or a string such as '2.2 g/cm3'")
            try:
                number_density(density, composition)
            except ScatterfitError as exc:
                raise _bad(422, f"request.density: {exc}") from None
    elif not isinstance(request.get("config"), str) or len(request["config"]) > 2**20:
        raise _bad(422, "request.config: the refine config's TOML text is required")
    return request


def create_app(data_dir, token: str | None, *, workers: int = 1, executor: str | None = None,
               limits: Limits | None = None, start_dispatcher: bool = True) -> FastAPI:
    """The service over ``data_dir`` (created; jobs.sqlite and jobs/ inside). ``token`` None: no authentication
    (the command allows it only on localhost)."""
    from contextlib import asynccontextmanager

    from scatterfit import __version__

    data_dir = Path(data_dir)
    (data_dir / "jobs").mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    store = JobStore(data_dir / "jobs.sqlite")
    dispatcher = Dispatcher(store, data_dir, workers, executor)

    @asynccontextmanager
    async def lifespan(app):
        if start_dispatcher:
            dispatcher.start()
        yield
        dispatcher.stop()
        store.close()

    app = FastAPI(title="scatterfit", version=__version__, lifespan=lifespan,
                  description="Atomic structures from scattering data: solve and refine jobs over HTTP.")
    app.state.store, app.state.dispatcher, app.state.data_dir = store, dispatcher, data_dir

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(status_code=422, content={"detail": f"{where}: {first.get('msg', 'invalid')}"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # never a traceback to the client
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__})"})

    app.add_middleware(BodyLimit, limit=limits.max_request_bytes)

    def authorised(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(status_code=401, detail="a valid 'Authorization: Bearer <token>' is required",
                                headers={"WWW-Authenticate": "Bearer"})

    def find(job_id: str):  # the path parameter's pattern is checked again: find is also called directly
        if not re.fullmatch(r"[0-9a-f]{16}", job_id):
            raise _bad(404, f"no job {job_id!r}")
        job = store.get(job_id)
        if job is None:
            raise _bad(404, f"no job {job_id!r}")
        return job

    @app.get("/v1/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", version=__version__, schema_version=SCHEMA_VERSION)

    @app.post("/v1/jobs", response_model=JobStatus, status_code=201, dependencies=[Depends(authorised)],
              responses=errors(400, 401, 413, 415))
    async def submit(request: str = Form(..., description="the job as JSON (see the module docstring)"),
                     files: list[UploadFile] = File(..., description="data files and candidate CIFs")) -> JobStatus:
        spec = _check_request(request)
        if not 1 <= len(files) <= limits.max_files:
            raise _bad(413 if len(files) > limits.max_files else 422,
                       f"files: between 1 and {limits.max_files} files per job")
        names = [_check_name(f.filename) for f in files]
        if len(set(names)) != len(names):
            raise _bad(400, "files: two uploads have the same name")
        for f, name in zip(files, names):
            suffix = Path(name).suffix.lower()
            if suffix not in DATA_SUFFIXES | STRUCTURE_SUFFIXES:
                raise _bad(415, f"{name}: type {suffix or '(none)'} is not a data or structure file scatterfit "
                                "reads")
            _check_text(name, await f.read(SNIFF))
            await f.seek(0)
        if spec["kind"] == "refine":
            _check_config(spec["config"], set(names))
            spec["files"] = names
        else:
            spec["data"] = [n for n in names if Path(n).suffix.lower() in DATA_SUFFIXES]
            spec["cifs"] = [n for n in names if Path(n).suffix.lower() in STRUCTURE_SUFFIXES]
            if not spec["data"]:
                raise _bad(422, "files: a solve needs at least one data file")
        staging = Path(tempfile.mkdtemp(dir=data_dir / "jobs", prefix=".upload-"))
        try:
            inputs = staging / "inputs"
            inputs.mkdir()
            for f, name in zip(files, names):
                size = 0
                with open(inputs / name, "wb") as out:
                    while chunk := await f.read(2**20):
                        size += len(chunk)
                        if size > limits.max_file_bytes:
                            raise _bad(413, f"{name}: larger than {limits.max_file_bytes} bytes")
                        out.write(chunk)
            if spec["kind"] == "refine":
                (inputs / "config.toml").write_text(spec["config"])
            _check_inputs(spec, inputs)
            job_id = new_job_id()
            staging.rename(job_dir(data_dir, job_id))  # the folder first: the dispatcher may claim the job at once
            staging = job_dir(data_dir, job_id)
            job = store.add(spec["kind"], {k: v for k, v in spec.items() if k != "config"}, spec.get("label", ""),
                            job_id=job_id)
            dispatcher.wake.set()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return _status(job, data_dir)

    @app.get("/v1/jobs", response_model=JobList, dependencies=[Depends(authorised)], responses=errors(401))
    def list_jobs(state: str | None = Query(None, description=f"one of {', '.join(STATES)}"),
                  kind: str | None = Query(None, description="solve or refine"),
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9)) -> JobList:
        if state is not None and state not in STATES:
            raise _bad(422, f"state: one of {', '.join(STATES)}")
        if kind is not None and kind not in ("solve", "refine"):
            raise _bad(422, "kind: solve or refine")
        return JobList(jobs=[_status(j, data_dir) for j in store.list(state, kind, limit, offset)])

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus, dependencies=[Depends(authorised)],
             responses=errors(401, 404))
    async def status(job_id: str = JOB_ID) -> JobStatus:  # async: no thread hand-off for the most frequent call
        return _status(find(job_id), data_dir)

    @app.delete("/v1/jobs/{job_id}", response_model=JobStatus, dependencies=[Depends(authorised)],
                responses=errors(401, 404, 409))
    def cancel(job_id: str = JOB_ID) -> JobStatus:
        job = find(job_id)
        if job.state in ("done", "failed", "cancelled"):
            raise _bad(409, f"job {job_id} has already ended ({job.state})")
        return _status(store.cancel(job_id), data_dir)

    def result_file(job_id: str, name: str) -> Path:
        job = find(job_id)
        out = job_dir(data_dir, job.id) / "out"
        if job.state != "done":
            raise _bad(409, f"job {job_id} is {job.state}: no results yet")
        path = out / name
        if not path.is_file():
            raise _bad(404, f"job {job_id} has no file {name!r}")
        return path

    @app.get("/v1/jobs/{job_id}/solution", dependencies=[Depends(authorised)],
             responses={200: {"content": {"application/json": {}}}, **errors(401, 404, 409)})
    def solution(job_id: str = JOB_ID) -> Response:
        job = find(job_id)
        name = "solution.json" if job.kind == "solve" else "summary.json"
        return Response(result_file(job_id, name).read_bytes(), media_type="application/json")

    @app.get("/v1/jobs/{job_id}/report", response_class=HTMLResponse, dependencies=[Depends(authorised)],
             responses=errors(401, 404, 409))
    def report(job_id: str = JOB_ID) -> HTMLResponse:
        return HTMLResponse(result_file(job_id, "report.html").read_text())

    @app.get("/v1/jobs/{job_id}/files", response_model=FileList, dependencies=[Depends(authorised)],
             responses=errors(401, 404, 409))
    def files(job_id: str = JOB_ID) -> FileList:
        job = find(job_id)
        if job.state != "done":
            raise _bad(409, f"job {job_id} is {job.state}: no results yet")
        out = job_dir(data_dir, job.id) / "out"
        return FileList(files=sorted(p.name for p in out.iterdir() if p.is_file() and NAME.match(p.name)))

    @app.get("/v1/jobs/{job_id}/files/{name}", dependencies=[Depends(authorised)],
             responses={200: {"content": {"application/octet-stream": {}}}, **errors(400, 401, 404, 409)})
    def one_file(job_id: str = JOB_ID, name: str = PathParam(..., pattern=NAME.pattern)) -> FileResponse:
        return FileResponse(result_file(job_id, _check_name(name)))

    @app.get("/v1/jobs/{job_id}/archive", dependencies=[Depends(authorised)],
             responses={200: {"content": {"application/zip": {}}}, **errors(401, 404)})
    def archive(job_id: str = JOB_ID) -> Response:
        job = find(job_id)
        folder = job_dir(data_dir, job.id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                    z.write(path, f"{job.id}/{path.relative_to(folder)}")
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{job.id}.zip"'})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        from scatterfit.service.page import PAGE

        return HTMLResponse(PAGE)

    return app


def _check_inputs(spec: dict, inputs: Path) -> None:
    """Parse what was uploaded once, before the job is queued: a data file the readers refuse, or a refine config
    the loader refuses, is a 422 now rather than a failed job later."""
    from scatterfit.errors import ScatterfitError

    try:
        if spec["kind"] == "solve":
            from scatterfit.io import load_dataset

            for name in spec["data"]:
                load_dataset(inputs / name)
        else:
            from scatterfit.config import load_config

            load_config(inputs / "config.toml")
    except ScatterfitError as exc:
        raise _bad(422, str(exc).replace(str(inputs) + "/", "")) from None
