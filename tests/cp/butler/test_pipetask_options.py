"""The pipetask option allow-list: what operators and job requests may pass to pipetask."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst.ts.calibscripts.cp.butler.pipeline_locations import cp_pipe_dir, generation_pipeline
from lsst.ts.calibscripts.cp.butler.pipetask_options import (
    MAX_OPTIONS_LENGTH,
    PipetaskOptionError,
    check_collection_name,
    check_data_query,
    check_pipeline,
    config_file_directories,
    parse_config_options,
    parse_job_config,
)

#: Every injection found by the security probe of issue 9, and variants.
INJECTIONS = [
    ("-c isr:doDefect=False --summary /repo/gen3.sqlite3", "'--summary' is not allowed"),
    ("--summary=/repo/gen3.sqlite3", "'--summary' is not allowed"),
    ("-ou/ocps/0123 --replace-run --prune-replaced=purge", "'-o' is not allowed.*output collection"),
    ("-o=X", "'-o' is not allowed"),
    ("-o X", "'-o' is not allowed"),
    ("--output=X", "'--output' is not allowed"),
    ("--output-run X", "'--output-run' is not allowed"),
    ("-bX", "'-b' is not allowed.*repository"),
    ("--butler-config=/other/repo", "'--butler-config' is not allowed"),
    ("-dX", "'-d' is not allowed.*data query"),
    ("-pX", "'-p' is not allowed.*pipeline"),
    ("--replace-run", "'--replace-run' is not allowed"),
    ("--clobber-outputs", "'--clobber-outputs' is not allowed"),
    ("--extend-run", "'--extend-run' is not allowed"),
    ("-c isr:doDefect=False isr:doBias=False", "unexpected argument 'isr:doBias=False'"),
    ("-c 'isr:doDefect=False", "No closing quotation"),
    ("-c", "'-c' needs a value"),
    ("-c=isr:doDefect=False", r"not -c=VALUE"),
    ("-c isr.doDefect=False", "is not LABEL:FIELD=VALUE"),
    ("-c isr:do-Defect=False", "is not LABEL:FIELD=VALUE"),
    ("-c 'isr:doDefect=False\n--summary'", "spans several lines"),
    ("-C isr:/tmp/evil.py", "no such file|may only come from"),
    ("-C isr:evil.py", r"give the file as \$CP_PIPE_DIR/config"),
]


@pytest.mark.parametrize(("text", "message"), INJECTIONS)
def test_operator_injections_refused(text: str, message: str) -> None:
    with pytest.raises(PipetaskOptionError, match=message) as info:
        parse_config_options(text, "config_options_bias")
    assert str(info.value).startswith("config_options_bias: ")


@pytest.mark.parametrize(("text", "message"), INJECTIONS)
def test_job_config_injections_refused(text: str, message: str) -> None:
    with pytest.raises(PipetaskOptionError, match=message):
        parse_job_config(f"-j 2 -i LATISS/calib --register-dataset-types {text}")


@pytest.mark.parametrize("text", ["-i LATISS/calib", "-j 8", "--register-dataset-types", "--input=a"])
def test_operators_may_not_set_what_the_script_sets(text: str) -> None:
    with pytest.raises(PipetaskOptionError, match="is not allowed"):
        parse_config_options(text)


def test_allowed_forms_rebuilt_in_order() -> None:
    options = parse_config_options(
        "-c isr:doDefect=False -cisr:doBias=True --config=cpBiasCombine:maxIter=3 "
        "--config isr:overscan.order=2 -C isr:$CP_PIPE_DIR/config/isrNoDefects.py"
    )
    config_file = cp_pipe_dir().resolve() / "config" / "isrNoDefects.py"
    assert options.arguments() == [
        "-c",
        "isr:doDefect=False",
        "-c",
        "isr:doBias=True",
        "-c",
        "cpBiasCombine:maxIter=3",
        "-c",
        "isr:overscan.order=2",
        "-C",
        f"isr:{config_file}",
    ]
    assert options.inputs == ()
    assert options.processes is None


def test_values_with_spaces_stay_one_argument() -> None:
    options = parse_config_options("-c 'isr:note=a b; rm -rf /'")
    assert options.arguments() == ["-c", "isr:note=a b; rm -rf /"]
    assert parse_job_config(options.as_text()).overrides == options.overrides


def test_job_config() -> None:
    options = parse_job_config("-j 4 -i LATISS/calib,LATISS/raw/all --input u/me/x --register-dataset-types")
    assert options.inputs == ("LATISS/calib", "LATISS/raw/all", "u/me/x")
    assert options.processes == 4
    assert options.register_dataset_types
    assert options.arguments() == ["-j", "4", "--register-dataset-types"]
    for bad in ("-j 0", "-j 1000", "-j two", "--register-dataset-types=yes", "-i 'a b'", "-i ../x"):
        with pytest.raises(PipetaskOptionError):
            parse_job_config(bad)


def test_config_file_must_stay_in_the_config_directories(tmp_path: Path) -> None:
    outside = tmp_path / "evil.py"
    outside.write_text("import os\n")
    with pytest.raises(PipetaskOptionError, match="may only come from"):
        parse_config_options(f"-C isr:{outside}")
    # Escaping with .. or a symbolic link does not help: the resolved file counts.
    escape = f"-C isr:$CP_PIPE_DIR/config/../../../../../../../../../..{outside}"
    with pytest.raises(PipetaskOptionError, match="may only come from"):
        parse_config_options(escape)
    directory = config_file_directories()[0]
    link = directory / "test-link-evil.py"
    link.symlink_to(outside)
    try:
        with pytest.raises(PipetaskOptionError, match="may only come from"):
            parse_config_options(f"-C isr:{link}")
    finally:
        link.unlink()


def test_length_bounded() -> None:
    with pytest.raises(PipetaskOptionError, match=f"at most {MAX_OPTIONS_LENGTH}"):
        parse_config_options("-c isr:doDefect=False " * 1000)


@pytest.mark.parametrize(
    "name", ["", "a b", "../x", "a//b", "a/../b", "/abs", "-o", "a;b", "$HOME", "x" * 300, "a/./b"]
)
def test_bad_collection_names(name: str) -> None:
    with pytest.raises(PipetaskOptionError, match="input_collections_bias"):
        check_collection_name(name, "input_collections_bias")


@pytest.mark.parametrize(
    "name", ["LATISS/calib", "u/ocps/0a1b", "LATISS/calib/daily/run.20261204T101010", "a+b-c_d"]
)
def test_good_collection_names(name: str) -> None:
    assert check_collection_name(name) == name


def test_pipelines_only_from_the_package(tmp_path: Path) -> None:
    bias = generation_pipeline("LATISS", "cpBias")
    assert check_pipeline("${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml") == str(bias.resolve())
    assert check_pipeline("$CP_PIPE_DIR/pipelines/LATISS/cpPtc.yaml#cpPtcGainFromFlatPairs").endswith(
        "cpPtc.yaml#cpPtcGainFromFlatPairs"
    )
    other = tmp_path / "cpBias.yaml"
    other.write_text(bias.read_text())
    for bad in (
        str(other),
        "$CP_PIPE_DIR/pipelines/../../../etc/passwd",
        "relative.yaml",
        "$HOME/x.yaml",
        "",
    ):
        with pytest.raises(PipetaskOptionError, match="pipeline"):
            check_pipeline(bad)


def test_data_query_one_bounded_line() -> None:
    assert check_data_query("instrument='LATISS' AND exposure IN (1, 2)")
    for bad in ("a\nb", "a\x00", "x" * 70000):
        with pytest.raises(PipetaskOptionError, match="data_query"):
            check_data_query(bad)
