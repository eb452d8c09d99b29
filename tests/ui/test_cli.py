"""``calibscripts ui``: the command, its errors, and serving until stopped."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cli import main
from lsst.ts.calibscripts.ui.cli import UiOptions, run_ui

from .page_client import PageClient, serving


@pytest.fixture(autouse=True)
def local_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)


async def test_serves_the_page_and_the_queue_until_stopped() -> None:
    options = UiOptions(with_queue=True, port=0, open_browser=False)
    async with serving(options) as banner, aiohttp.ClientSession() as session:
        assert banner.url.startswith("http://127.0.0.1:")
        text = banner.getvalue()
        assert "Following ATQueue (ScriptQueue:2, run here) over the local transport" in text
        assert "Ctrl-C stops the page and the queue (terminating its scripts)." in text
        async with session.get(banner.url) as response:
            assert response.status == 200
        async with session.get(banner.url + "api/state") as response:
            state = await response.json()
        assert state["queue"]["name"] == "ATQueue"
        assert state["queue"]["summaryState"] == "ENABLED"


async def test_a_port_in_use_is_named() -> None:
    async with serving(UiOptions(with_queue=True, port=0, open_browser=False)) as banner:
        port = int(banner.url.rsplit(":", 1)[1].strip("/"))
        second = UiOptions(queue="MTQueue", with_queue=True, port=port, open_browser=False)
        with pytest.raises(RuntimeError, match=f"Port {port} on 127.0.0.1 is in use"):
            await run_ui(second, stream=io.StringIO())


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    """The simulated observatory's directory, as it names it (resolved)."""
    return tmp_path.resolve()


async def test_simulate_runs_the_observatory_for_the_calibration_scripts(var_dir: Path) -> None:
    options = UiOptions(
        with_queue=True,
        simulate="LATISS",
        geometry="reduced",
        time_scale=0.01,
        var_dir=var_dir,
        port=0,
        open_browser=False,
    )
    repo = str(var_dir / "repo" / "LATISS")
    async with serving(options) as banner, aiohttp.ClientSession(base_url=banner.url) as session:
        text = banner.getvalue()
        assert "Simulated LATISS observatory running: ATSpectrograph, ATCamera, ATHeaderService" in text
        assert f"the page fills in repo: {repo}" in text
        page = PageClient(session)
        await page.connect()
        try:
            state = await page.get("/api/state")
            assert state["suggestedOptions"] == {"repo": repo}
            path = "auxtel/make_latiss_calibrations.py"
            schema = await page.get(f"/api/schema?path={path}")
            assert {"repo", "n_bias", "script_mode"} <= set(schema["options"])
            # Images only (no pipelines): quick, and it needs the simulated camera and OODS.
            config = f"script_mode: BIAS\nn_bias: 2\nn_discard_bias: 0\ndo_verify: false\nrepo: {repo}\n"
            index = (await page.post("/api/queue/add", {"path": path, "config": config}))["salIndex"]
            await page.wait_script(index, "DONE", field="processState")
            assert page.scripts[index]["scriptState"] == "DONE", page.scripts[index]["reason"]
            assert any("BIAS 2 of 2 taken" in message for message in page.log_of(index))
        finally:
            await page.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ui", "--port", "0"], "only a queue in this process can be followed: add --with-queue"),
        (["ui", "--standard", "."], "--standard and --external set up the queue of --with-queue"),
    ],
)
def test_unusable_options_are_a_one_line_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("calibscripts ui: error: ")
    assert message in err
    assert err.count("\n") == 1
