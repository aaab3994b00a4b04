"""The Prefect UI path, as an operator uses it: Debian's chromium driven by Playwright against a
local Prefect server with its UI on and Sundown's deployments served (`sundown serve`).

The operator opens the UI, finds the decommission deployment, fills the custom-run form (the
Pydantic parameter model renders as labelled fields), starts the run, waits for the pause,
reads the plan digest from the plan artifact, opens the resume form, enters the digest, name and
role, resumes, and finds the certificate artifact with its status in words. A wrong digest in
the resume form is refused and nothing is deleted. Each step is saved as a screenshot under
test-output/ui/ (looked at by a person when the forms change).
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sundown import registry
from tests.fixtures.postgres import start_postgres
from tests.fixtures.prefect import start_prefect_server
from tests.fixtures.process import ROOT, free_port, running, start_server
from tests.flows.systems import System, make_system

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = ROOT / "test-output" / "ui"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SUNDOWN_HOME shared by the served flows and the tests (keys, plans, ledger)."""
    return tmp_path_factory.mktemp("ui-sundown-home")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Iterator[str]:
    """A Prefect server with its UI on, and `sundown serve` serving the deployments to it. On
    PostgreSQL, as runbooks/prefect-on-postgres.md recommends: on SQLite, the UI's resume under
    CI load once met "database is locked" (the server answered 500 and the dialog stayed)."""
    pg = start_postgres("prefect_ui")
    try:
        server = start_prefect_server(tmp_path_factory.mktemp("prefect-ui-home"), pg.url,
                                      ui=True, name="prefect-ui")  # fmt: skip
        with running(server):
            port = free_port()  # names the log file only
            log = ROOT / "test-output" / "servers" / f"sundown-serve-ui-{port}.log"
            serve = start_server(
                "sundown-serve-ui",
                [sys.executable, "-m", "cli", "serve"],
                port,
                env={"PREFECT_API_URL": f"{server.url}/api", "SUNDOWN_HOME": str(home)},
                ready=lambda: "being served" in log.read_text(errors="replace"),
                timeout=120,
                cwd=ROOT,
            )
            with running(serve):
                yield server.url
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: run scripts/setup-test-env (Debian chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, ui_server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=ui_server)
    context.set_default_timeout(30_000)
    # Assertions wait as long as actions do: on a loaded 2-core machine the UI can take more
    # than expect()'s default 5 s to close a dialog or show a state.
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def system(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, request: Any) -> System:
    monkeypatch.setenv("SUNDOWN_HOME", str(home))  # the keyring the served flows see
    name = "ui-" + re.sub(r"[^a-z]", "", request.node.name.removeprefix("test_"))[:12]
    return make_system(tmp_path / "sys", name)


class Shots:
    """Numbered screenshots of one test under test-output/ui/<test>/."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.dir = SHOTS / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.n = 0

    def __call__(self, step: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.dir / f"{self.n:02d}-{step}.png"), full_page=True)


def _field(page: Any, label: str) -> Any:
    """The form field whose label starts with ``label`` (its group: label, help, input)."""
    lab = page.locator("label", has_text=re.compile("^" + re.escape(label)))
    return lab.first.locator("xpath=ancestor::div[contains(@class,'group')][1]")


def _start_run(page: Any, system: System, run_name: str, shots: Shots) -> None:
    """From the UI's home page: Deployments > decommission > Run > Custom run, fill, submit."""
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_role("link", name="Deployments", exact=True).first.click()
    page.get_by_role("link", name="decommission", exact=True).first.click()
    expect(page.get_by_text("decommission-system").first).to_be_visible()
    shots("deployment")
    page.get_by_role("button", name="Run").first.click()
    page.get_by_role("menuitem", name="Custom run").click()

    # the parameter model renders as labelled fields, each with its help text
    for label, help_text in [
        ("System spec file", "Path of the system spec YAML file"),
        ("System spec text", "instead of a file path"),
        ("Spec variables", "placeholders in the spec"),
        ("Dry run (plan only)", "nothing archived, deleted"),
        ("Approved plan digest", "Leave empty and the run pauses"),
        ("Approver", "Who gave the approval in advance"),
        ("Performer", "named on the certificate"),
        ("Approval timeout (seconds)", "waits paused for approval"),
        ("Copies per purge batch", "Copies deleted per purge task"),
        ("Shard deployment", "every worker of its work pool"),
        ("Bound concurrency per cloud account", "global concurrency limit"),
    ]:
        field = _field(page, label)
        expect(field).to_be_visible()
        expect(field).to_contain_text(help_text)

    page.get_by_label("Run Name").fill(run_name)
    spec = _field(page, "System spec file")
    spec.get_by_role("tab", name="str").click()
    spec.get_by_role("textbox").fill(str(system.spec_path))
    _field(page, "Spec variables").locator(".cm-content").click()
    page.keyboard.insert_text(f'{{"ROOT": "{system.root}"}}')  # a JSON editor
    performer = _field(page, "Performer")
    _field(performer, "Name").get_by_role("textbox").fill("Ada Operator")
    _field(performer, "Role").get_by_role("textbox").fill("ml-platform-engineer")
    shots("run-form")
    page.get_by_role("button", name="Submit").click()
    page.get_by_role("button", name="View run").click()
    expect(page.get_by_text(run_name).first).to_be_visible()


def _wait_state(page: Any, state: str, shots: Shots, timeout: float = 120) -> None:
    """Reload the run page until its header shows ``state``."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + timeout
    badge = page.locator("main").first.get_by_text(state, exact=True).first
    while True:
        try:
            expect(badge).to_be_visible(timeout=5_000)
        except AssertionError:
            if time.monotonic() > deadline:
                shots(f"no-{state.lower()}")
                raise AssertionError(f"the run page did not show {state!r} in {timeout}s") from None
            page.reload()
        else:
            shots(state.lower())
            return


def _open_artifact(page: Any, key: str, expected: list[str], shots: Shots) -> str:
    """Artifacts tab of the run > the artifact ``key``; returns the page's text (as a reader
    sees it, whitespace collapsed) once it shows every ``expected`` text (the markdown renders
    after the page)."""
    from playwright.sync_api import expect

    run_url = page.url
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text(key, exact=True).first.click()
    page.wait_for_url(re.compile(r"/artifacts/artifact/"))
    body = page.locator("main").first
    for text in expected:
        expect(body).to_contain_text(text)
    deadline = time.monotonic() + 15
    while True:
        shown = " ".join(str(body.inner_text()).split())
        if all(t in shown for t in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    shots(f"artifact-{key}")
    page.goto(run_url)
    return shown


def _resume(page: Any, digest: str, shots: Shots) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Open menu").last.click()
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Resume Flow Run")
    expect(_field(dialog, "Plan digest")).to_contain_text("plan artifact")
    _field(dialog, "Plan digest").get_by_role("textbox").fill(digest)
    _field(dialog, "Your full name").get_by_role("textbox").fill("Lee Marchetti")
    _field(dialog, "Your role").get_by_role("textbox").fill("security-officer")
    _field(dialog, "Organisation").get_by_role("textbox").fill("Acme")
    shots("resume-form")
    dialog.get_by_role("button", name="Resume").click()
    expect(dialog).to_be_hidden()


def test_operator_runs_approves_and_reads_the_certificate(page: Any, system: System) -> None:
    shots = Shots(page, "approve")
    _start_run(page, system, "retire ui approve", shots)
    _wait_state(page, "Paused", shots)
    assert len(system.files(f"models/{system.name}")) == 4  # paused: nothing touched

    plan = _open_artifact(
        page, f"plan-{system.name}", ["Retirement plan for", "Plan digest"], shots
    )
    digest = DIGEST.search(plan)
    assert digest, plan
    _resume(page, digest[0], shots)
    _wait_state(page, "Completed", shots, timeout=180)

    certificate = _open_artifact(
        page,
        f"decommission-certificate-{system.name}",
        ["Certificate of Sanitization", "Status: COMPLETE."],  # the status, in words
        shots,
    )
    assert "Status: COMPLETE. Every copy in scope was purged" in certificate
    assert "Lee Marchetti" in certificate and digest[0] in certificate
    assert system.files(f"models/{system.name}") == [] and system.canaries_intact()


def test_wrong_digest_in_the_resume_form_is_refused(page: Any, system: System) -> None:
    from playwright.sync_api import expect

    shots = Shots(page, "wrong-digest")
    _start_run(page, system, "retire ui wrong digest", shots)
    _wait_state(page, "Paused", shots)
    _resume(page, "sha256:" + "5" * 64, shots)
    _wait_state(page, "Failed", shots)
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_text("approval names plan digest").first).to_be_visible()
    shots("refusal-in-logs")
    assert len(system.files(f"models/{system.name}")) == 4
    registry.open_key_service(f"local://{system.name}-kek").info()  # key untouched
    assert system.canaries_intact()
