"""The bps mode's configuration: what the OCPS writes for a job, refuses, and how it clusters.

No bps runs here (see test_ocps_bps.py); reading a pipeline's tasks takes a
second or two the first time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from lsst.ts.calibscripts.cp.butler.pipeline_locations import cp_pipe_dir
from lsst.ts.calibscripts.simulator.executors.base import JobRequest
from lsst.ts.calibscripts.simulator.executors.bps_config import (
    CLUSTER_ALGORITHM,
    build_bps_config,
    check_bps_text,
    cluster_sections,
    task_dimensions,
    write_bps_config,
)
from lsst.ts.calibscripts.simulator.executors.bps_site import (
    SLURM_SITE_FILE,
    BpsSiteError,
    load_site,
    local_site,
)
from lsst.ts.calibscripts.simulator.executors.settings import (
    ExecutorSettings,
    add_executor_arguments,
    executor_settings_from_args,
    parse_cluster,
)
from lsst.ts.calibscripts.simulator.ocps_job import JobParameters, JobRequestError

CP_BIAS = "${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml"
QUERY = "instrument='LATISS' AND exposure IN (2022092900001, 2022092900002)"


def request(tmp_path: Path, **fields: str) -> JobRequest:
    parameters = {"pipeline": CP_BIAS, "config": "", "data_query": QUERY, **fields}
    return JobRequest(
        job_id="0123abcd",
        instrument="LATISS",
        repo="/repo",
        raw_collection="LATISS/raw/all",
        parameters=JobParameters(**parameters),
        job_dir=tmp_path / "uws" / "0123abcd",
    )


def test_the_request_is_split_as_bps_wants_it(tmp_path: Path) -> None:
    config = build_bps_config(
        request(tmp_path, config="-j 4 -i LATISS/calib --register-dataset-types -c isr:doDefect=False"),
        site=local_site(3),
        cluster_by=["detector"],
        final_job_cpus=1,
    )
    settings = config.settings
    assert settings["wmsServiceClass"] == "lsst.ctrl.bps.parsl.ParslService"
    assert settings["pipelineYaml"] == f"{cp_pipe_dir()}/pipelines/LATISS/cpBias.yaml"
    assert settings["payload"] == {
        "payloadName": "0123abcd",
        "butlerConfig": "/repo",
        "inCollection": "LATISS/raw/all,LATISS/calib",
        "dataQuery": QUERY,
        "output": "u/ocps/0123abcd",
        "outputRun": "{output}/{timestamp}",
    }
    assert settings["extraQgraphOptions"] == "-c isr:doDefect=False"
    assert settings["submitPath"] == str(tmp_path / "uws" / "0123abcd" / "submit")
    assert settings["computeSite"] == "local"
    assert settings["site"]["local"] == {"class": "lsst.ctrl.bps.parsl.sites.Local", "cores": 3, "retries": 0}
    assert settings["finalJob"] == {"requestCpus": 1}
    assert settings["clusterAlgorithm"] == CLUSTER_ALGORITHM
    assert settings["cluster"] == {"detector": {"pipetasks": "isr,cpBiasCombine", "dimensions": "detector"}}
    assert "bps: -j 4 ignored: parallelism comes from the site's cores (3)" in config.notes
    assert "bps: --register-dataset-types: the final job registers the dataset types" in config.notes

    path = tmp_path / "bps.yaml"
    write_bps_config(config, request(tmp_path), path)
    text = path.read_text()
    assert text.startswith("# bps configuration of OCPS job 0123abcd")
    assert yaml.safe_load(text) == settings


def test_a_blank_query_and_per_quantum_jobs(tmp_path: Path) -> None:
    config = build_bps_config(
        request(tmp_path, data_query=" "), site=local_site(1), cluster_by=[], final_job_cpus=1
    )
    assert config.settings["pipetaskDataQuery"] == ""
    assert "cluster" not in config.settings and "clusterAlgorithm" not in config.settings
    assert "bps: one job per quantum (no clustering)" in config.notes


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # The pipetask allow-list holds in bps mode.
        ({"config": "-o u/me/elsewhere"}, "option '-o' is not allowed"),
        ({"pipeline": "/etc/passwd"}, "only the pipelines in"),
        # What bps's configuration engine would evaluate or substitute.
        ({"data_query": "bpsEval(print, 'x')"}, "'bpsEval'"),
        ({"data_query": "exposure = {operator}"}, "'{'"),
        ({"data_query": 'instrument="LATISS"'}, "single quotes"),
        ({"data_query": 'x = 1" --save-qgraph /tmp/evil "'}, "'\"'"),
        ({"config": "-c isr:doDefect=${HOME}"}, "'\\$'"),
        ({"config": "-c isr:doDefect=<ENV:HOME>"}, "'<ENV:'"),
    ],
)
def test_requests_refused_in_bps_mode(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    with pytest.raises(JobRequestError, match=message):
        build_bps_config(
            request(tmp_path, **fields), site=local_site(1), cluster_by=["detector"], final_job_cpus=1
        )


def test_check_bps_text_lets_ordinary_queries_through() -> None:
    query = "instrument='LATISS' AND exposure >= 5 AND detector < 3 AND physical_filter = 'empty~empty'"
    assert check_bps_text(query, "data_query", quoted=True) == query


def test_tasks_after_a_focal_plane_task_go_to_a_second_cluster() -> None:
    # cpFlat: isr and cpFlatMeasure per detector, cpFlatNorm over all detectors, cpFlatCombine per detector.
    dimensions, edges = task_dimensions(f"{cp_pipe_dir()}/pipelines/LSSTComCam/cpFlat.yaml")
    assert "detector" not in dimensions["cpFlatNorm"]
    assert cluster_sections(dimensions, edges, ["detector"]) == {
        "detector": {"pipetasks": "isr,cpFlatMeasure", "dimensions": "detector"},
        "detector2": {"pipetasks": "cpFlatCombine", "dimensions": "detector"},
    }
    assert cluster_sections(dimensions, edges, []) == {}


def test_site_files(tmp_path: Path) -> None:
    slurm = load_site(SLURM_SITE_FILE)
    assert (slurm.name, slurm.site_class, slurm.cores) == ("slurm", "lsst.ctrl.bps.parsl.sites.Slurm", None)
    assert slurm.settings["site"]["slurm"]["walltime"] == "02:00:00"
    assert local_site(2).describe() == "Parsl site 'local' (lsst.ctrl.bps.parsl.sites.Local, 2 cores)"

    bad = tmp_path / "site.yaml"
    bad.write_text("computeSite: local\nsite: {local: {class: x}}\npayload: {output: u/me}\n")
    with pytest.raises(BpsSiteError, match="sets payload, which the OCPS writes for each job"):
        load_site(bad)
    bad.write_text(
        "computeSite: local\nsite: {local: {class: x}}\nwmsServiceClass: lsst.ctrl.bps.htcondor.X\n"
    )
    with pytest.raises(BpsSiteError, match=r"the OCPS runs bps with lsst\.ctrl\.bps\.parsl\.ParslService"):
        load_site(bad)
    bad.write_text("computeSite: cluster\nsite: {local: {class: x}}\n")
    with pytest.raises(BpsSiteError, match=r"site\.cluster\.class must name a Parsl site class"):
        load_site(bad)


def test_command_line_settings() -> None:
    parser = argparse.ArgumentParser()
    add_executor_arguments(parser)
    assert executor_settings_from_args(parser.parse_args([])) == ExecutorSettings()
    settings = executor_settings_from_args(
        parser.parse_args(
            ["--executor", "bps", "--bps-site", str(SLURM_SITE_FILE), "--bps-cluster", "quantum"]
        )
    )
    assert settings == ExecutorSettings("bps", SLURM_SITE_FILE, ())
    with pytest.raises(ValueError, match="need --executor bps"):
        executor_settings_from_args(parser.parse_args(["--bps-site", "x.yaml"]))
    assert parse_cluster("exposure, detector") == ("exposure", "detector")
    with pytest.raises(ValueError, match="give dimension names"):
        parse_cluster("detector; rm -rf")
