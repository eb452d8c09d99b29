"""Every pipeline exists where the scripts look, loads, and has the documented labels and outputs."""

from __future__ import annotations

import os

import pytest
from lsst.daf.butler import Butler
from lsst.pipe.base import Pipeline

from lsst.ts.calibscripts.cp.butler.pipeline_locations import (
    cp_pipe_dir,
    cp_verify_dir,
    generation_pipeline,
    pipeline_environment,
    verification_pipeline,
)
from lsst.ts.calibscripts.cp.butler.repository import create_repository

INSTRUMENTS = ["LATISS", "LSSTComCam"]

# Pipeline -> (task labels, dataset types it writes that users read).
GENERATION = {
    "cpBias": ({"isr", "cpBiasCombine"}, {"bias"}),
    "cpDark": ({"isr", "cpDarkCombine"}, {"dark"}),
    "cpFlat": ({"isr", "cpFlatMeasure", "cpFlatNorm", "cpFlatCombine"}, {"flat"}),
    "cpDefects": ({"isr", "cpDefectsFind"}, {"defects"}),
    "cpPtc": ({"isr", "ptcExtract", "ptcSolve"}, {"cpPtcExtract", "ptc"}),
}


def verification_expectations(kind: str) -> tuple[set[str], set[str]]:
    # ISR and the statistics are one quantum (verify<Type>Isr), which also
    # writes the residual image verify<Type>Proc (unless doWriteResidual=False).
    labels = {f"verify{kind}{step}" for step in ("Isr", "Exp", "Run")}
    outputs = {f"verify{kind}{suffix}" for suffix in ("Proc", "DetStats", "ExpStats", "Stats")}
    return labels, outputs


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A fresh repository: resolving against it checks the connections agree
    with the dataset types registered at creation (storage classes included)."""
    root = create_repository(tmp_path_factory.mktemp("definitions") / "repo", INSTRUMENTS)
    with Butler.from_config(str(root)) as butler:
        yield butler.registry


@pytest.fixture(autouse=True)
def cp_environment(monkeypatch):
    for name, value in pipeline_environment({}).items():
        monkeypatch.setenv(name, value)


def load(path) -> Pipeline:
    return Pipeline.from_uri(str(path))


@pytest.mark.parametrize("instrument", INSTRUMENTS)
@pytest.mark.parametrize("name", sorted(GENERATION))
def test_generation_pipelines(instrument, name, registry):
    path = generation_pipeline(instrument, name)
    assert path == cp_pipe_dir() / "pipelines" / instrument / f"{name}.yaml"
    graph = load(path).to_graph(registry=registry)
    labels, outputs = GENERATION[name]
    assert set(graph.tasks) == labels
    assert outputs <= set(graph.dataset_types)
    for calibration in outputs - {"cpPtcExtract"}:
        assert graph.dataset_types[calibration].is_calibration
    # The scripts' default options name the ISR task "isr".
    pipeline = load(path)
    pipeline.addConfigOverride("isr", "doDefect", False)
    pipeline.addConfigOverride("isr", "doCrosstalk", False)
    pipeline.to_graph()


@pytest.mark.parametrize("instrument", INSTRUMENTS)
@pytest.mark.parametrize("kind", ["Bias", "Dark", "Flat"])
def test_verification_pipelines(instrument, kind, registry):
    path = verification_pipeline(instrument, f"verify{kind}")
    assert path == cp_verify_dir() / "pipelines" / instrument / f"verify{kind}.yaml"
    graph = load(path).to_graph(registry=registry)
    labels, outputs = verification_expectations(kind)
    assert set(graph.tasks) == labels
    assert outputs <= set(graph.dataset_types)
    # Only bias verification starts from the generation's ISR output.
    reuses = {
        edge.parent_dataset_type_name for edge in graph.tasks[f"verify{kind}Isr"].prerequisite_inputs.values()
    }
    assert ("cpBiasProc" in reuses) == (kind == "Bias")
    # The options the scripts and the procedure documents use still apply.
    pipeline = load(path)
    pipeline.addConfigOverride(f"verify{kind}Isr", "doDefect", False)
    pipeline.addConfigOverride(f"verify{kind}Isr", "doWriteResidual", False)
    assert f"verify{kind}Proc" not in set(pipeline.to_graph(registry=registry).dataset_types)


def test_gain_from_flat_pairs_subset():
    path = generation_pipeline("LATISS", "cpPtc")
    for subset in ("cpPtcGainFromFlatPairs", "generateGainFromFlatPair"):
        graph = load(f"{path}#{subset}").to_graph()
        assert set(graph.tasks) == {"isr", "ptcExtract"}


def test_flat_normalisation_per_instrument():
    modes = {}
    for instrument in INSTRUMENTS:
        graph = load(generation_pipeline(instrument, "cpFlat")).to_graph()
        modes[instrument] = graph.tasks["cpFlatNorm"].config.scaleMode  # type: ignore[attr-defined]
    assert modes == {"LATISS": "DETECTOR", "LSSTComCam": "EXPOSURE"}


def test_missing_pipeline_names_the_instruments():
    with pytest.raises(FileNotFoundError, match="instruments with pipelines: LATISS, LSSTComCam"):
        generation_pipeline("LSSTCam", "cpBias")


def test_environment_points_at_the_package_data():
    environment = pipeline_environment({"PATH": "/bin", "CP_PIPE_DIR": "/elsewhere"})
    assert environment["PATH"] == "/bin"
    assert environment["CP_PIPE_DIR"] == str(cp_pipe_dir())
    assert os.path.isdir(environment["CP_VERIFY_DIR"])
