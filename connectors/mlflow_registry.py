"""An MLflow tracking server's registered model or experiment as a record store (mlflow):
``mlflow://HOST:PORT/models/NAME`` and ``mlflow://HOST:PORT/experiments/NAME``.

- ``models/NAME``: the registered model (``registered-model:NAME``), every version
  (``model-version:NAME/N``), the logged models they were registered from
  (``logged-model:ID``) and the runs that produced them (``run:ID``).
- ``experiments/NAME``: every run of the experiment, in any lifecycle stage, and its logged
  models; with ``whole_experiment: true`` the experiment itself goes too (``dropped``).

**Permanently.** Deleting a run or a logged model through the tracking API only marks it
``deleted``: it stays in the tracking store, readable, until ``mlflow gc`` removes it. This
connector does what gc does for the tracking store, through MLflow's own store class opened on
``MLFLOW_BACKEND_STORE_URI`` (gc's variable; the database URL, never in the location URL): after
the API delete, the run, logged model or experiment is hard-deleted there. Without that variable
a purge that has runs to delete stops before deleting anything. Registry deletes (versions, the
model) go through the API: a deleted version leaves a redacted row behind until its registered
model is deleted, which removes the rows.

**Never outside.** Before any delete the purge stops (ScopeError) when a model version the list
does not name was produced by a listed run (another model's lineage), and (ConflictError) when
the location holds a version, run or model the list does not name.

**Artifacts are not deleted here.** A run's artifact URI and a logged model's artifact location
are object-store locations (``s3://...``): :meth:`MlflowRecords.linked_locations` names them so
the retirement purges them, with their versions, through the object-store connector, and only
where the system spec scopes them (:func:`sundown.linked.split_by_scope`). A proxied URI
(``mlflow-artifacts:/...``) names no location Sundown can open: it is reported as outside.

Retention (:meth:`MlflowRecords.apply_retention`, ``experiments/NAME`` only): runs older than N
days, deleted permanently as the purge deletes them.

Credentials: MLflow's own variables (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``,
``MLFLOW_TRACKING_TOKEN``); ``SUNDOWN_MLFLOW_TLS=1`` for https. A client per operation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from connectors._staged import StagedRecords, split_id
from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    PermissionDeniedError,
    ScopeError,
    SundownError,
    TransientError,
    UnsupportedError,
)
from sundown.linked import LinkedLocation
from sundown.record_retention import RetentionAction
from sundown.records import (
    MLFLOW_SHAPE,
    Finding,
    RecordCapability,
    RecordEntry,
    RecordPurgeResult,
    RecordVerification,
    Selector,
    parse_selector,
)

SCHEME = "mlflow"
BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"
# at most: experiments have all three, registered models only linked locations
CAPABILITIES = frozenset(
    {RecordCapability.WHOLE, RecordCapability.LINKED, RecordCapability.RETENTION}
)
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
_PAGE = 1000
T = TypeVar("T")


class MlflowRecords(StagedRecords):
    """A registered model with its lineage, or an experiment's runs, on one tracking server."""

    noun = "MLflow record"

    def __init__(self, url: str, selector: Mapping[str, object] | None = None) -> None:
        loc = MLFLOW_SHAPE.parse(url)  # the spec's rules (sundown/records.py)
        kind, name = loc.segments
        if kind == "models":
            chosen = parse_selector(selector, whole_word=None, where=False, where_of=url)
            self.STAGES = ("model-version", "registered-model", "logged-model", "run")
        else:
            chosen = (
                parse_selector(selector, whole_word="whole_experiment", where=False, where_of=url)
                if selector
                else Selector()
            )
            self.STAGES = ("logged-model", "run")
        super().__init__(loc, chosen)
        self.kind = kind
        self.name = name
        self._open_backend: Any = None  # kept only inside _held() (one purge, verify, sweep)
        self._holding = False
        self.capabilities = (
            CAPABILITIES if kind == "experiments" else frozenset({RecordCapability.LINKED})
        )

    @property
    def where(self) -> str:
        what = "registered model" if self.kind == "models" else "experiment"
        return f"MLflow {what} {self.name!r} on {self._loc.host}:{self._loc.port}"

    # -- clients --------------------------------------------------------------------------------

    def _client(self) -> MlflowClient:
        tls = os.environ.get("SUNDOWN_MLFLOW_TLS", "") in ("1", "true", "yes")
        uri = f"{'https' if tls else 'http'}://{self._loc.host}:{self._loc.port}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            raise _translate(exc, f"{what} on {self.where}") from None

    def _get(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)``, or None when the server says the resource does not exist."""
        try:
            return fn(*args)
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return None
            raise _translate(exc, f"{what} on {self.where}") from None

    @contextmanager
    def _held(self) -> Iterator[None]:
        """The backend store, once opened, is kept for the length of this one operation
        (opening one checks the schema, about a second), never beyond it."""
        self._holding = True
        try:
            yield
        finally:
            self._holding, self._open_backend = False, None

    def _backend(self) -> Any:
        """MLflow's store class on the backend store: opened once per :meth:`_held` operation,
        and afresh for each call outside one."""
        if self._open_backend is not None:
            return self._open_backend
        uri = os.environ.get(BACKEND_ENV)
        if not uri:
            raise UnsupportedError(
                f"purge of {self.where}: runs and logged models are only marked deleted through "
                f"the tracking API; set {BACKEND_ENV} to the tracking server's backend store "
                "(as for mlflow gc) so they are deleted permanently: nothing deleted"
            )
        from mlflow.tracking import _get_store

        try:
            store = _get_store(uri)
        except Exception as exc:  # the message may quote the URI, which may hold a password
            raise BackendError(
                f"purge of {self.where}: the backend store named by {BACKEND_ENV} could not be "
                f"opened ({type(exc).__name__}; the message is withheld: it may quote the URI): "
                "nothing deleted"
            ) from None
        if not hasattr(store, "_hard_delete_run"):
            raise UnsupportedError(f"{BACKEND_ENV} names a store that cannot hard-delete runs")
        if self._holding:
            self._open_backend = store
        return store

    # -- inventory ------------------------------------------------------------------------------

    def _paged(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = self._call(what, fn, max_results=_PAGE, page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return

    def _file_roots(self, client: MlflowClient, ident: str) -> list[str]:
        """The URIs under which a version registered from this run or logged model finds its
        files without naming it by id: the artifact URI or location itself
        (``register_model("s3://.../artifacts/m")`` carries neither a run id nor a model id),
        and for a logged model ``models:/<id>``. (The server refuses a ``runs:/`` source whose
        run id is not given: those are found by run id.) One holding a quote or a backslash is
        refused (it would be spliced into the search filter): ScopeError, nothing deleted."""
        kind, entity_id = split_id(ident)
        if kind == "run":
            run = self._get("get run", client.get_run, entity_id)
            roots = [str(getattr(getattr(run, "info", None), "artifact_uri", "") or "")]
        else:
            lm = self._get("get logged model", client.get_logged_model, entity_id)
            roots = [f"models:/{entity_id}", str(getattr(lm, "artifact_location", "") or "")]
        roots = [r.rstrip("/") for r in roots if r.rstrip("/")]
        if any("'" in r or "\\" in r for r in roots):
            raise ScopeError(
                f"purge of {self.where}: {ident} has an artifact location that cannot be "
                "searched for safely; nothing deleted"
            )
        return roots

    def _versions_under(self, client: MlflowClient, roots: Sequence[str]) -> list[Any]:
        """Every model version whose source is one of ``roots`` or a path below one. The
        server's LIKE treats ``%`` and ``_`` in a root as wildcards, so it may answer more:
        each answer is checked here, exactly."""
        found = []
        for root in roots:
            for mv in self._versions(client, f"source_path LIKE '{root}%'"):
                source = str(mv.source or "")
                if source.rstrip("/") == root or source.startswith(root + "/"):
                    found.append(mv)
        return found

    def _versions(self, client: MlflowClient, where: str) -> list[Any]:
        return list(self._paged("search model versions", client.search_model_versions,
                                filter_string=where))  # fmt: skip

    def _experiment(self, client: MlflowClient) -> Any | None:
        return self._get("get experiment", client.get_experiment_by_name, self.name)

    def _walk(self) -> dict[str, Any]:
        """record id -> the MLflow entity, for everything in scope."""
        client = self._client()
        found: dict[str, Any] = {}
        if self.kind == "models":
            model = self._get("get registered model", client.get_registered_model, self.name)
            if model is None:
                return found
            found[f"registered-model:{self.name}"] = model
            for mv in self._versions(client, f"name = '{self.name}'"):
                found[f"model-version:{self.name}/{mv.version}"] = mv
                model_id = getattr(mv, "model_id", None) or _model_id(mv.source)
                if model_id:
                    self._add_logged(client, found, model_id)
                if mv.run_id:
                    self._add_run(client, found, mv.run_id)
            return found
        experiment = self._experiment(client)
        if experiment is None:
            return found
        for run in self._paged("search runs", client.search_runs,
                               experiment_ids=[experiment.experiment_id],
                               run_view_type=ViewType.ALL):  # fmt: skip
            found[f"run:{run.info.run_id}"] = run
        for lm in self._paged("search logged models", client.search_logged_models,
                              experiment_ids=[experiment.experiment_id]):  # fmt: skip
            found[f"logged-model:{lm.model_id}"] = lm
        for lm in self._deleted_logged_models(client, str(experiment.experiment_id)):
            found.setdefault(f"logged-model:{lm.model_id}", lm)
        return found

    def _peek_backend(self) -> Any | None:
        """The backend store when it is named, else None."""
        return self._backend() if os.environ.get(BACKEND_ENV) else None

    def _held_alike(self, what: str, read: Callable[[], T], alike: Callable[[T], bool]) -> None:
        """``what``, read through the backend store, must be there and ``alike`` what the
        server reports: else the backend store is another store than this server's."""
        try:
            theirs = read()
        except MlflowException as exc:
            raise ConflictError(
                f"purge of {self.where}: {BACKEND_ENV} does not hold {what} "
                f"({exc.error_code}): it names another store than this server's; nothing deleted"
            ) from None
        if not alike(theirs):
            raise ConflictError(
                f"purge of {self.where}: {what} in {BACKEND_ENV} is not the one the server "
                "reports: it names another store than this server's; nothing deleted"
            )

    def _check_same_experiment(self, client: MlflowClient, backend: Any, exp_id: str) -> None:
        """The backend store must hold the experiment the server reports, by id and name."""
        ours = self._get("get experiment", client.get_experiment, exp_id)
        self._held_alike(
            f"experiment {exp_id}",
            lambda: backend.get_experiment(exp_id),
            lambda theirs: ours is not None and theirs.name == ours.name,
        )

    def _deleted_logged_models(self, client: MlflowClient, exp_id: str) -> list[Any]:
        """Logged models of the experiment already soft-deleted: the tracking API never shows
        them (MLflow filters them out), so they are read through the backend store."""
        backend = self._peek_backend()
        if backend is None:
            return []
        self._check_same_experiment(client, backend, exp_id)
        out = []
        for model_id in backend._get_deleted_logged_models():
            try:
                lm = backend.get_logged_model(model_id, allow_deleted=True)
            except MlflowException:
                continue  # gone meanwhile
            if str(lm.experiment_id) == exp_id:
                out.append(lm)
        return out

    def _add_logged(self, client: MlflowClient, found: dict[str, Any], model_id: str) -> None:
        if f"logged-model:{model_id}" in found:
            return
        lm = self._get("get logged model", client.get_logged_model, model_id)
        if lm is not None:
            found[f"logged-model:{model_id}"] = lm
            source_run = getattr(lm, "source_run_id", None)
            if source_run:
                self._add_run(client, found, str(source_run))

    def _add_run(self, client: MlflowClient, found: dict[str, Any], run_id: str) -> None:
        if f"run:{run_id}" not in found:
            run = self._get("get run", client.get_run, run_id)
            if run is not None:
                found[f"run:{run_id}"] = run

    def _current(self) -> list[RecordEntry]:
        walked = self._walk()
        return [
            RecordEntry(ident, _size(entity))
            for ident, entity in sorted(walked.items())
            if split_id(ident)[0] in self.STAGES
        ]

    def _exists(self, kind: str, name: str) -> bool:
        client = self._client()
        if kind == "run":
            return self._get("get run", client.get_run, name) is not None
        if kind == "logged-model":
            if self._get("get logged model", client.get_logged_model, name) is not None:
                return True
            backend = self._peek_backend()  # a soft-deleted one is only seen there
            if backend is None:
                return False
            try:
                backend.get_logged_model(name, allow_deleted=True)
            except MlflowException:
                return False
            return True
        if kind == "registered-model":
            return self._get("get registered model", client.get_registered_model, name) is not None
        if kind == "model-version":
            model, _, version = name.rpartition("/")
            mv = self._get("get model version", client.get_model_version, model, version)
            return mv is not None
        return False

    # -- purge ----------------------------------------------------------------------------------

    def _precheck(self, listed: Sequence[RecordEntry], current: Sequence[RecordEntry]) -> None:
        ids = {e.id for e in listed}
        for e in listed:
            kind, name = split_id(e.id)
            if kind == "model-version" and name.rpartition("/")[0] != self.name:
                self.refuse_outside([e.id])
            if kind == "registered-model" and name != self.name:
                self.refuse_outside([e.id])
        client = self._client()
        users: list[str] = []
        # A version registered from a run carries its run id; one registered from the files'
        # URI (or from a logged model without a run) carries none: found by its source.
        for ident in sorted(i for i in ids if i.startswith(("run:", "logged-model:"))):
            entity_id = split_id(ident)[1]
            if "'" in entity_id or "\\" in entity_id:
                raise ScopeError(f"purge of {self.where}: {ident}: odd id; nothing deleted")
            by_run = (
                self._versions(client, f"run_id = '{entity_id}'")
                if ident.startswith("run:")
                else []
            )
            for mv in by_run + self._versions_under(client, self._file_roots(client, ident)):
                user = f"version {mv.version} of model {mv.name!r} comes from {ident}"
                if f"model-version:{mv.name}/{mv.version}" not in ids and user not in users:
                    users.append(user)
        if users:
            raise ScopeError(
                f"purge of {self.where}: {'; '.join(users)}: deleting it would break "
                "another model's lineage; nothing deleted"
            )
        hard = [i for i in ids if split_id(i)[0] in ("run", "logged-model")]
        if hard or self._selector.whole:
            backend = self._backend()
            now = {e.id for e in current}
            for ident in sorted(i for i in hard if i.startswith("run:")):
                if ident in now:
                    self._check_same_store(backend, split_id(ident)[1])
            # independent of runs: the experiment, and every logged model still there, must
            # be read through the backend store as the server reports them
            if self.kind == "experiments":
                experiment = self._experiment(client)
                if experiment is not None:
                    self._check_same_experiment(client, backend, str(experiment.experiment_id))
            for ident in sorted(i for i in hard if i.startswith("logged-model:")):
                lm = self._get("get logged model", client.get_logged_model, split_id(ident)[1])
                if lm is not None:
                    self._check_same_logged(backend, lm)

    def _check_same_logged(self, backend: Any, lm: Any) -> None:
        """The backend store must hold the logged model the server reports (experiment, name)."""
        self._held_alike(
            f"logged model {lm.model_id}",
            lambda: backend.get_logged_model(lm.model_id, allow_deleted=True),
            lambda theirs: (
                str(theirs.experiment_id) == str(lm.experiment_id) and theirs.name == lm.name
            ),
        )

    def _check_same_store(self, backend: Any, run_id: str) -> None:
        """The backend store must hold the run the server listed."""
        self._held_alike(f"run {run_id}", lambda: backend.get_run(run_id), lambda _: True)

    def _delete(self, kind: str, name: str) -> bool:
        client = self._client()
        if kind == "model-version":
            model, _, version = name.rpartition("/")
            return self._gone_ok(
                "delete model version", client.delete_model_version, model, version
            )
        if kind == "registered-model":
            return self._gone_ok("delete registered model", client.delete_registered_model, name)
        backend = self._backend()
        if kind == "logged-model":
            self._gone_ok("delete logged model", client.delete_logged_model, name)
            return self._gone_ok(
                "hard-delete logged model", backend._hard_delete_logged_model, name
            )
        run = self._get("get run", client.get_run, name)
        if run is not None and run.info.lifecycle_stage != "deleted":
            self._gone_ok("delete run", client.delete_run, name)
        return self._gone_ok("hard-delete run", backend._hard_delete_run, name)

    def _gone_ok(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            fn(*args)
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return False
            raise _translate(exc, f"{what} on {self.where}") from None
        return True

    def purge(self, entries: Sequence[RecordEntry], *, batch_size: int = 500) -> RecordPurgeResult:
        with self._held():
            return self._purge(entries, batch_size)

    def _purge(self, entries: Sequence[RecordEntry], batch_size: int) -> RecordPurgeResult:
        whole = self._selector.whole
        experiment = self._experiment(self._client()) if whole else None
        result = super().purge(entries, batch_size=batch_size)
        if whole and experiment is not None and not result.stopped and not result.failed:
            client = self._client()
            # the experiment's delete cascades to whatever it holds: anything still there was
            # never listed (written during the purge), so it is not dropped unseen
            left = sorted(self._walk())
            if left:
                raise ConflictError(
                    f"purge of {self.where}: the experiment still holds {len(left)} record(s) "
                    f"the purge did not list ({', '.join(left[:5])}): written during the purge; "
                    "the experiment is not deleted"
                )
            if experiment.lifecycle_stage != "deleted":
                self._gone_ok("delete experiment", client.delete_experiment,
                              experiment.experiment_id)  # fmt: skip
            self._gone_ok("hard-delete experiment", self._backend()._hard_delete_experiment,
                          experiment.experiment_id)  # fmt: skip
            if self._get("get experiment", client.get_experiment, experiment.experiment_id):
                raise BackendError(f"{self.where} is still there after its delete")
            result.dropped = True
        return result

    def verify(self, entries: Sequence[RecordEntry]) -> RecordVerification:
        with self._held():  # one backend store for the listing and every entry's re-check
            check = super().verify(entries)
        gone = self.kind == "experiments" and self._experiment(self._client()) is None
        if self.kind == "models":
            gone = not self._exists("registered-model", self.name)
        if gone and self._selector.whole:
            return RecordVerification(None, check.listed_present, True, check.sample)
        return RecordVerification(check.in_scope, check.listed_present, gone, check.sample)

    # -- retention (retention_sweep) ------------------------------------------------------------

    def apply_retention(
        self, delete_after_days: int, as_of: datetime, *, dry_run: bool = False
    ) -> list[RetentionAction]:
        """Delete permanently (as :meth:`purge` does) the experiment's runs, in any lifecycle
        stage, written at least ``delete_after_days`` before ``as_of`` (their end time, else
        their start time). Never outside the experiment (every run read back is checked); a
        run still running, or that produced a registered model's version, is kept. Nothing is
        deleted when ``MLFLOW_BACKEND_STORE_URI`` is missing or names another store."""
        if self.kind != "experiments":
            raise UnsupportedError(f"retention of {self.where}: only experiments' runs age out")
        client = self._client()
        experiment = self._experiment(client)
        if experiment is None:
            return []
        cutoff = as_of - timedelta(days=delete_after_days)
        out: list[RetentionAction] = []
        doomed: list[tuple[str, str]] = []
        for run in self._paged("search runs", client.search_runs,
                               experiment_ids=[experiment.experiment_id],
                               run_view_type=ViewType.ALL):  # fmt: skip
            info = run.info
            written = info.end_time or info.start_time
            if info.experiment_id != experiment.experiment_id or written is None:
                continue  # another experiment's (the answer is untrusted) or no age: not ours
            at = datetime.fromtimestamp(written / 1000, UTC)
            if at > cutoff:
                continue
            target, before = f"run:{info.run_id}", f"{info.lifecycle_stage}, written {at:%Y-%m-%d}"
            users = self._versions(client, f"run_id = '{info.run_id}'")
            if info.status in ("RUNNING", "SCHEDULED") or users:
                why = (
                    f"still {info.status.lower()}"
                    if not users
                    else f"version {users[0].version} of model {users[0].name!r} comes from it"
                )
                out.append(RetentionAction(target, "kept", before, before, why[:300]))
                continue
            doomed.append((target, before))
            files = str(info.artifact_uri or "")[:500]
            why = f"older than {delete_after_days} days; its artifacts at {files} stay"
            out.append(RetentionAction(target, "would delete", before, "deleted", why))
        if dry_run or not doomed:
            return out
        with self._held():
            backend = self._backend()  # before any delete: no store, nothing deleted
            self._check_same_store(backend, split_id(doomed[0][0])[1])
            stopped: str | None = None
            for i, action in enumerate(out):
                if action.action != "would delete":
                    continue
                if stopped is not None:  # after a failure: not attempted, and said so
                    out[i] = replace(action, action="kept", after=action.before, detail=stopped)
                    continue
                run_id = split_id(action.target)[1]
                try:
                    self._delete("run", run_id)
                    gone = not self._exists("run", run_id)
                except SundownError as exc:
                    gone, stopped = False, f"not attempted: stopped after {action.target} failed"
                    action = replace(action, detail=f"{type(exc).__name__}: {exc}"[:500])
                if not gone:
                    stopped = stopped or f"not attempted: {action.target} is still there"
                out[i] = replace(action, action="deleted" if gone else "failed",
                                 after="deleted" if gone else "still there")  # fmt: skip
        return out

    # -- what stays elsewhere -------------------------------------------------------------------

    def linked_locations(self) -> list[LinkedLocation]:
        out: dict[str, LinkedLocation] = {}
        walked = self._walk()
        if self.kind == "experiments" and self._selector.whole:
            experiment = self._experiment(self._client())
            if experiment is not None and experiment.artifact_location:
                url = str(experiment.artifact_location)
                out[url] = LinkedLocation(url, "experiment artifacts", f"experiment:{self.name}")
        for ident, entity in sorted(walked.items()):
            for kind, url in _artifact_urls(ident, entity):
                out.setdefault(url, LinkedLocation(url, kind, ident))
        return sorted(out.values(), key=lambda x: x.url)

    def findings(self) -> list[Finding]:
        out = [
            Finding(
                link.kind,
                link.url,
                True,
                f"{link.source} keeps its files at {link.url}: deleting it in MLflow leaves them; "
                "the plan must purge that location with the object-store connector",
            )
            for link in self.linked_locations()
        ]
        backend = os.environ.get(BACKEND_ENV)
        out.append(
            Finding(
                "backend store",
                "set" if backend else None,
                True,
                "deleting rows from the tracking database is logical deletion: its files, "
                "write-ahead log and backups keep their bytes until overwritten",
                note=None
                if backend
                else f"{BACKEND_ENV} is not set: runs cannot be purged "
                "permanently (the API only marks them deleted), and logged models someone "
                "already deleted through the API are not listed (the API hides them; they stay "
                "in the tracking store): this inventory cannot show they are gone",
            )
        )
        if self.kind == "experiments":
            out.append(
                Finding(
                    "traces and datasets",
                    None,
                    None,
                    "traces, evaluation datasets and prompts of the experiment are not "
                    "inventoried by this connector (docs/known-gaps.md)",
                    note="outside this connector's scope",
                )
            )
        return out


def _model_id(source: str | None) -> str | None:
    """The logged model a version was registered from, when its source is
    ``models:/<model id>`` (MLflow 3; the search API does not always fill ``model_id``)."""
    if source and source.startswith("models:/") and source.count("/") == 1:
        candidate = source[len("models:/") :]
        return candidate if candidate.startswith("m-") else None
    return None


def _size(entity: Any) -> int:
    """The bytes of what the tracking store keeps for an entity, as the API shows them: its
    parameters, tags, metrics and description."""
    data = getattr(entity, "data", None)
    total = 0
    for mapping in (getattr(data, "params", None), getattr(data, "tags", None),
                    getattr(entity, "params", None), getattr(entity, "tags", None)):  # fmt: skip
        if isinstance(mapping, Mapping):
            total += sum(len(str(k)) + len(str(v)) for k, v in mapping.items())
    metrics = getattr(data, "metrics", None)
    if isinstance(metrics, Mapping):
        total += sum(len(str(k)) + 8 for k in metrics)
    total += len(str(getattr(entity, "description", "") or ""))
    return total


def _artifact_urls(ident: str, entity: Any) -> Iterator[tuple[str, str]]:
    kind = split_id(ident)[0]
    if kind == "run" and entity.info.artifact_uri:
        yield "run artifacts", str(entity.info.artifact_uri)
    elif kind == "logged-model" and getattr(entity, "artifact_location", None):
        yield "logged model artifacts", str(entity.artifact_location)
    elif kind == "model-version":
        for attr in ("storage_location", "source"):
            value = getattr(entity, attr, None)
            if value and "://" in str(value) and not str(value).startswith(("models:", "runs:")):
                yield "model version files", str(value)


def _translate(exc: MlflowException, what: str) -> SundownError:
    code = str(exc.error_code)
    text = f"{what}: {code}: {exc.message}".splitlines()[0]
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        return PermissionDeniedError(text)
    if code in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
        return TransientError(text)
    if code == "INVALID_PARAMETER_VALUE":
        return InputError(text)
    return BackendError(text)


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> MlflowRecords:
    return MlflowRecords(url, selector)
