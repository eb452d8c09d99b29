"""The shape the calibration PipelineTasks share: connections, fields, runQuantum.

Every task of `lsst.ts.calibscripts.cp.tasks` is declared from these pieces,
so that what they have in common is written once:

* connection factories for the datasets they exchange: processed exposures
  (`processed_exposure`), structured-dictionary statistics (`dict_input`,
  `dict_output`) and calibrations (`calibration_output`,
  `calibration_prerequisite`);
* configuration-field factories for the parameters several tasks carry
  under their own names (`clip_field`, `iterations_field`,
  `mask_planes_field`, `rows_per_read_field`, `cosmic_ray_threshold_field`,
  `cosmic_ray_grow_field`): one doc style, one range check;
* `CalibPipelineTask`, whose ``runQuantum`` reads every input, lets the task
  prepare them (`CalibPipelineTask.prepare_inputs`), runs and writes every
  output; `ExposureHandlesTask` (the handles of a detector's exposures,
  sorted by exposure) and `ProcessedImageTask` (one processed image read
  without its variance) are its two common preparations.

A factory returns a new object at every call: pipe_base records the
attribute name in each connection, and pex_config in each field, so one
object must never be shared by two attributes.
"""

from __future__ import annotations

__all__ = [
    "PROCESSED_IMAGE_STORAGE_CLASS",
    "CalibPipelineTask",
    "ExposureHandlesTask",
    "ProcessedImageTask",
    "calibration_output",
    "calibration_prerequisite",
    "clip_field",
    "cosmic_ray_grow_field",
    "cosmic_ray_threshold_field",
    "dict_input",
    "dict_output",
    "exposure_of",
    "iterations_field",
    "keep_freed_memory",
    "mask_planes_field",
    "processed_exposure",
    "resolve_threads",
    "rows_per_read_field",
    "sorted_by_exposure",
    "threads_field",
]

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DatasetRef, DeferredDatasetHandle
from lsst.pex.config import Field, ListField
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    QuantumContext,
)

from ..butler.dataset_types import CalibrationDatasetType
from .image_conventions import read_without_variance

PROCESSED_IMAGE_STORAGE_CLASS = "MaskedImageV2"
"""Storage class of every image ISR and the combinations write."""

_PER_EXPOSURE = ("instrument", "exposure", "detector")
"""Dimensions of a processed exposure of one detector."""

_DICT_STORAGE_CLASS = "StructuredDataDict"


# Connections.


def processed_exposure(name: str, doc: str, *, multiple: bool = False) -> cT.Input:
    """Declare a processed exposure input (an ISR output), read lazily.

    Parameters
    ----------
    name
        Default dataset type name (pipelines set their own).
    doc
        What the input is.
    multiple
        Whether the quantum sees all the exposures of its detector (the
        combinations, the PTC pairs) rather than one.

    Returns
    -------
    connection
        A deferred input: the tasks read planes, cut-outs or pairs, never
        the whole image or stack at once.
    """
    return cT.Input(
        name=name,
        doc=doc,
        storageClass=PROCESSED_IMAGE_STORAGE_CLASS,
        dimensions=_PER_EXPOSURE,
        multiple=multiple,
        deferLoad=True,
    )


def dict_input(name: str, doc: str, dimensions: Sequence[str], *, multiple: bool = True) -> cT.Input:
    """Declare a structured-dictionary input (statistics, scales).

    ``multiple`` is true by default: the tasks that read dictionaries merge
    them; the flat combination reads its one table of scales.
    """
    return cT.Input(
        name=name,
        doc=doc,
        storageClass=_DICT_STORAGE_CLASS,
        dimensions=tuple(dimensions),
        multiple=multiple,
    )


def dict_output(name: str, doc: str, dimensions: Sequence[str]) -> cT.Output:
    """Declare a structured-dictionary output (statistics, scales)."""
    return cT.Output(name=name, doc=doc, storageClass=_DICT_STORAGE_CLASS, dimensions=tuple(dimensions))


def _calibration_connection(dataset_type: CalibrationDatasetType, doc: str) -> dict[str, Any]:
    """Return the arguments every connection to a calibration dataset type shares."""
    return {
        "name": dataset_type.name,
        "doc": doc,
        "storageClass": dataset_type.storage_class,
        "dimensions": dataset_type.dimensions,
        "isCalibration": True,
    }


def calibration_output(dataset_type: CalibrationDatasetType, doc: str) -> cT.Output:
    """Declare a calibration a task writes (``BIAS``, ``FLAT``, ``DEFECTS``, ``PTC``...).

    Name, dimensions and storage class are those of
    `lsst.ts.calibscripts.cp.butler.dataset_types`, where the repositories
    register them.
    """
    return cT.Output(**_calibration_connection(dataset_type, doc))


def calibration_prerequisite(
    dataset_type: CalibrationDatasetType, doc: str, *, deferLoad: bool = False, minimum: int = 1
) -> cT.PrerequisiteInput:
    """Declare a certified calibration a task reads.

    Parameters
    ----------
    dataset_type
        The calibration (``BIAS``, ``DARK``, ``FLAT``, ``DEFECTS``).
    doc
        What the input is.
    deferLoad
        Whether the task reads it itself, from a handle.
    minimum
        Fewest datasets the quantum needs; 0 makes the input optional.

    Returns
    -------
    connection
        The prerequisite input, looked up in calibration collections.
    """
    return cT.PrerequisiteInput(
        **_calibration_connection(dataset_type, doc), deferLoad=deferLoad, minimum=minimum
    )


# Configuration fields. Every task names its own field (the pipelines and
# their users set them by those names); what the fields mean, their doc
# style and their range checks are written here once. The checks reject the
# values with which the algorithms would divide by zero, iterate zero times
# or clip every pixel.


def _positive(value: float) -> bool:
    return value > 0


def _non_negative(value: float) -> bool:
    return value >= 0


def _at_least_one(value: int) -> bool:
    return value >= 1


def _number[N: (int, float)](dtype: type[N], doc: str, default: N, check: Callable[[N], bool]) -> Field[N]:
    """Declare a checked number field whose doc ends with its default."""
    return Field(doc=f"{doc} Default: {default!r}.", dtype=dtype, default=default, check=check)


def clip_field(default: float, what: str) -> Field[float]:
    """Declare a clipping half-width of ``what``, in standard deviations (positive)."""
    return _number(float, f"Clipping half-width of {what}, in standard deviations.", default, _positive)


def iterations_field(default: int = 3) -> Field[int]:
    """Declare a number of clipping iterations (at least 1)."""
    return _number(int, "Clipping iterations.", default, _at_least_one)


def rows_per_read_field(default: int = 1000) -> Field[int]:
    """Declare the rows of each input an `~.exposure_stack.ExposureStack` reads at once (positive)."""
    doc = "Rows of each input read at once (memory holds this many rows of every input)."
    return _number(int, doc, default, _positive)


def threads_field() -> Field[int]:
    """Declare the threads a quantum computes with (0: one per core, at most two).

    Every result is the same whatever the number: threads share out
    independent pieces (rows of a combination, amplifiers of a detector).
    """
    doc = (
        "Threads this quantum computes with; 0 = one per core, at most 2. Results do not depend on it; "
        "set 1 when pipetask -j already keeps every core busy."
    )
    return _number(int, doc, 0, _non_negative)


def resolve_threads(value: int) -> int:
    """Return the threads a ``numThreads`` field asks for (0: one per core, at most two)."""
    return value if value > 0 else max(1, min(2, os.cpu_count() or 1))


def cosmic_ray_threshold_field(default: float, above: str) -> Field[float]:
    """Declare a cosmic-ray detection threshold, in noise sigma above ``above`` (positive)."""
    return _number(
        float, f"Cosmic-ray detection threshold: this many noise sigma above {above}.", default, _positive
    )


def cosmic_ray_grow_field(default: int = 2) -> Field[int]:
    """Declare the pixels by which a cosmic ray is grown (non-negative)."""
    doc = "Pixels by which each cosmic ray is grown before it is excluded."
    return _number(int, doc, default, _non_negative)


def mask_planes_field(default: Sequence[str], effect: str = "ignored") -> ListField[str]:
    """Declare the mask planes whose pixels are ``effect`` (``ignored``, ``not combined``)."""
    return ListField[str](
        doc=f"Pixels with any of these mask planes are {effect}. Default: {list(default)!r}.",
        default=list(default),
    )


# Reading quanta.


def exposure_of(dataset: DatasetRef | DeferredDatasetHandle) -> int:
    """Return the exposure id of a dataset reference or handle."""
    return int(dataset.dataId["exposure"])


def sorted_by_exposure[T: (DatasetRef, DeferredDatasetHandle)](datasets: Iterable[T]) -> list[T]:
    """Return references or handles in exposure order (acquisition order)."""
    return sorted(datasets, key=exposure_of)


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process reuse the memory of the images it frees (glibc; once per process).

    A full-size image is 62 MiB. glibc gives every allocation that large
    fresh pages from the kernel and returns them when the array is freed,
    so each new image is zeroed page by page again: 25 ms per image on an
    idle 2-core machine, several times that on a busy one, and a quantum
    makes about ten. Raising glibc's mmap and trim thresholds keeps freed
    images in the heap for the next ones: half the system time of an ISR
    quantum. The process no longer gives memory back between its quanta,
    and fragmentation raises its peak a little (a full-size cpBias: about
    150 MiB). ``CALIBSCRIPTS_KEEP_FREED_MEMORY=0`` turns it off.

    Returns
    -------
    applied
        Whether the thresholds were set (not on other C libraries).
    """
    name = ctypes.util.find_library("c")
    if not name or os.environ.get("CALIBSCRIPTS_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))


class CalibPipelineTask(PipelineTask):
    """A PipelineTask whose quantum is: read the inputs, prepare, run, write.

    ``runQuantum`` reads every input connection (deferred ones as handles),
    passes them through `prepare_inputs`, calls ``run`` with them as keyword
    arguments and writes the returned `~lsst.pipe.base.Struct` to the
    outputs. Subclasses override `prepare_inputs` only. Making one sets the
    process to reuse freed image memory (`keep_freed_memory`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep_freed_memory()

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read and prepare the inputs, run, and write the outputs.

        Parameters
        ----------
        butlerQC
            Butler access limited to this quantum.
        inputRefs, outputRefs
            The quantum's datasets.
        """
        inputs = self.prepare_inputs(butlerQC.get(inputRefs), inputRefs)
        butlerQC.put(self.run(**inputs), outputRefs)

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Turn the inputs as read into the arguments of ``run``.

        Parameters
        ----------
        inputs
            Connection name -> dataset, list of datasets (``multiple``), or
            handle(s) (``deferLoad``), as the quantum context read them.
        inputRefs
            The quantum's input references, in the order of ``inputs``'
            lists (for their data IDs).

        Returns
        -------
        arguments
            Keyword arguments of ``run``; here ``inputs`` unchanged.
        """
        return inputs


class ExposureHandlesTask(CalibPipelineTask):
    """A task that runs on the handles of a detector's exposures, in exposure order.

    The connection is ``inputExpHandles`` (`processed_exposure` with
    ``multiple``). Sorting fixes the order of the combination's inputs and
    of the metadata listing them, whatever order the graph builder found
    them in.
    """

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Sort the ``inputExpHandles`` by exposure; pass the other inputs on."""
        return inputs | {"inputExpHandles": sorted_by_exposure(inputs["inputExpHandles"])}


class ProcessedImageTask(CalibPipelineTask):
    """A task that measures one processed image and never looks at its variance.

    The connection is ``inputExp`` (`processed_exposure`); it is read with
    `~lsst.ts.calibscripts.cp.tasks.image_conventions.read_without_variance`,
    which skips decompressing the variance plane.
    """

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Read the ``inputExp`` handle without its variance; pass the other inputs on."""
        return inputs | {"inputExp": read_without_variance(inputs["inputExp"])}
