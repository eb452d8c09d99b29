"""The ``calibscripts`` command: repository creation and ingest."""

from __future__ import annotations

from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cli import main

from .test_repository import write_bias


def test_repo_create_and_ingest(tmp_path, capsys):
    repo = tmp_path / "repo"
    assert main(["repo", "create", str(repo), "--instrument", "LATISS", "--instrument", "LSSTComCam"]) == 0
    assert "ready with instrument(s) LATISS, LSSTComCam" in capsys.readouterr().out
    assert main(["repo", "create", str(repo)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["repo", "create", str(repo), "--exist-ok"]) == 0
    capsys.readouterr()

    files = [str(write_bias(tmp_path / f"b{i}.fits", i)) for i in (1, 2)]
    assert main(["repo", "ingest", str(repo), *files]) == 0
    assert "Ingested 2 raw(s), skipped 0" in capsys.readouterr().out
    assert main(["repo", "ingest", str(repo), *files]) == 0
    assert "Ingested 0 raw(s), skipped 2" in capsys.readouterr().out
    assert main(["repo", "ingest", str(repo), str(tmp_path / "nope.fits")]) == 1
    assert "nope.fits: no such file" in capsys.readouterr().err
    with Butler.from_config(str(repo)) as butler:
        assert len(butler.query_datasets("raw", collections="LATISS/raw/all")) == 2


def test_unknown_instrument_is_a_plain_error(tmp_path, capsys):
    assert main(["repo", "create", str(tmp_path / "r"), "--instrument", "HSC"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("calibscripts: error: Unknown instrument 'HSC'")
    assert "Traceback" not in err


def test_pipelines_env_and_path(capsys):
    assert main(["pipelines", "env"]) == 0
    out = capsys.readouterr().out
    assert "export CP_PIPE_DIR=" in out and "export CP_VERIFY_DIR=" in out
    assert main(["pipelines", "path", "LATISS", "cpBias"]) == 0
    assert capsys.readouterr().out.strip().endswith("cp_pipe/pipelines/LATISS/cpBias.yaml")
