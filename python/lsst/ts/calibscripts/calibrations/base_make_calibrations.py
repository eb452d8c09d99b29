"""BaseMakeCalibrations: take images, run the OCPS pipelines, verify, certify."""

from __future__ import annotations

__all__ = ["BaseMakeCalibrations", "CalibrationStepError"]

import abc
import asyncio
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from astropy.time import Time
from lsst.daf.butler import Butler, CollectionType, MissingCollectionError

from ..control import BaseCamera
from ..cp.butler.calibration_needs import CalibrationNeedsError, timespan_now
from ..cp.butler.certification import CertificationError, certify_calibrations, parse_date
from ..cp.butler.pipetask_options import (
    PipetaskOptionError,
    PipetaskOptions,
    check_collection_name,
    parse_config_options,
)
from ..cp.camera.description import InstrumentDescription, get_instrument_description
from ..sal import BaseMessage
from ..salobj import Domain, ExpectedError, Remote, State
from ..script import ConfigError, ConfigProblem
from ..script.base_block_script import BaseBlockScript
from .gains import format_gains_table
from .image_plan import ImagePlan, expand_exposure_times, flat_pairs
from .ocps_client import OcpsClient, OcpsJob
from .preflight import JobInputs, describe_shortfalls, find_shortfalls
from .run_summary import RunSummary
from .verification_report import format_verification_report, verdict_message
from .verification_rule import apply_majority_rule

#: Generation pipeline and dataset type per image type.
_PRODUCTS = {"BIAS": "bias", "DARK": "dark", "FLAT": "flat"}
#: Which certified products each generated type needs.
_NEEDS = {"BIAS": (), "DARK": ("BIAS",), "FLAT": ("BIAS", "DARK")}
_READOUT_TIME = 2.0


class CalibrationStepError(ExpectedError):
    """A step of the calibration sequence failed; the message says why.

    An `ExpectedError`: the cause has already been reported, so the script
    fails without a traceback.
    """


class BaseMakeCalibrations(BaseBlockScript, abc.ABC):
    """Take calibration images, build and verify combined calibrations, certify them.

    For each image type of the configured mode (BIAS, DARK, FLAT in that
    order) the script takes the images, waits until the OODS has them, then
    processes them in the background while it takes the next type:
    generation (``cp<Type>.yaml``) through the OCPS, verification
    (``verify<Type>.yaml``), the majority rule and a report to the operator,
    and certification of accepted calibrations. A type that needs an earlier
    one (a dark needs the new bias) waits until that one is certified. After
    flats: defects, PTC or gains from flat pairs, as configured.

    Subclasses set the class attributes and implement `make_camera`.

    Parameters
    ----------
    index : `int`
        SAL index.
    descr : `str`
        Short description.
    domain : `Domain`, optional
        Domain to use.
    """

    #: Butler instrument name.
    instrument_name: ClassVar[str]
    #: OCPS index serving the instrument.
    ocps_index: ClassVar[int]
    #: Name of the schema file in ``schemas/scripts``.
    schema_name: ClassVar[str]
    #: Name of the OODS component.
    oods_name: ClassVar[str]
    #: Processing time estimate per job (s) plus per image-detector (s), for the duration.
    job_overhead_estimate = 30.0
    job_per_image_estimate = 3.0

    def __init__(self, index: int, descr: str, *, domain: Domain | None = None) -> None:
        super().__init__(index, descr=descr, domain=domain)
        self.instrument: InstrumentDescription = get_instrument_description(self.instrument_name)
        # Remotes are made now so the description event lists them.
        self.camera = self.make_camera(self.domain)
        self.ocps_remote = Remote(
            self.domain, "OCPS", self.ocps_index, include=["summaryState", "job_result", "errorCode"]
        )
        self.oods_remote = self.camera.remote(self.oods_name)
        self.oods_remote.evt_imageInOODS.callback = self._on_image_in_oods
        self._oods_seen: dict[tuple[str, str], BaseMessage] = {}
        self._oods_event = asyncio.Event()
        self.plans: list[ImagePlan] = []
        self.detectors: list[int] = []
        self.summary = RunSummary()
        self.exposures_taken: dict[str, list[int]] = {}
        self.exposures_used: dict[str, list[int]] = {}
        self._certified: dict[str, asyncio.Future[bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.ocps: OcpsClient | None = None
        #: Gains from flat pairs: {(exposure 1, exposure 2): {detector: {amp: gain}}}.
        self.pair_gains: dict[tuple[int, int], dict[int, dict[str, float]]] = {}
        #: Physical filter the flats will be taken with, found before the first image (None: unknown).
        self.flat_filter: str | None = None

    # --- what subclasses provide ------------------------------------------

    @abc.abstractmethod
    def make_camera(self, domain: Domain) -> BaseCamera:
        """Make the camera use-case class (it must include the OODS)."""

    def image_types(self) -> list[str]:
        """Image types to take, in order."""
        return ["BIAS"]

    def exposure_times_option(self, image_type: str) -> float | list[float]:
        """Return the exposure-time option of a type (0 for biases)."""
        return 0.0

    def setup_instrument_options(self) -> dict[str, Any]:
        """Instrument set-up to apply once, before the first image."""
        return {}

    def input_collections_option(self, purpose: str) -> str:
        """Name of the option holding the input collections of a job (``input_collections_<purpose>``)."""
        return f"input_collections_{purpose}"

    def input_collections(self, purpose: str) -> list[str]:
        """Input collections of a job: ``bias``, ``verify_bias``, ``dark``...

        Looked up in `input_collections_option`.
        """
        assert self.config is not None
        value = getattr(self.config, self.input_collections_option(purpose), "") or ""
        return [c.strip() for c in str(value).split(",") if c.strip()]

    async def find_flat_filter(self) -> str | None:
        """Return the physical filter the flats will be taken with, if the run takes flats.

        Asked before the first image, so that the preflight looks up flats
        of that filter. None (the default) accepts a flat of any filter.
        """
        return None

    def config_options(self, purpose: str) -> str:
        """Extra pipetask options of a job (``config_options_<purpose>``)."""
        assert self.config is not None
        return str(getattr(self.config, f"config_options_{purpose}", "") or "")

    def threshold(self, image_type: str) -> int:
        """``number_verification_tests_threshold_<type>``."""
        assert self.config is not None
        return int(getattr(self.config, f"number_verification_tests_threshold_{image_type.lower()}"))

    def threshold_option(self, image_type: str) -> str:
        """Name of the option holding the threshold of a type."""
        return f"number_verification_tests_threshold_{image_type.lower()}"

    @property
    def extra_steps(self) -> list[str]:
        """Steps after the image types (``DEFECTS``, ``PTC``, ``GAIN``)."""
        return []

    # --- configuration ------------------------------------------------------

    @classmethod
    def get_schema(cls) -> dict[str, Any]:
        """Return the schema in ``schemas/scripts/<schema_name>.yaml``."""
        return cls.load_schema(cls.schema_name)

    async def configure(self, config: types.SimpleNamespace) -> None:
        """Check the options together; build the image plans.

        Raises
        ------
        ConfigError
            Naming the option(s) at fault.
        """
        self.configure_block(config)
        detectors = list(config.detectors) or [d.id for d in self.instrument.detectors]
        known = {d.id for d in self.instrument.detectors}
        unknown = sorted(set(detectors) - known)
        if unknown:
            raise ConfigError(
                f"detectors {unknown} are not {self.instrument_name} detectors (known: {sorted(known)})"
            )
        if len(set(detectors)) != len(detectors):
            raise ConfigError(f"detectors {detectors} lists a detector twice")
        self.detectors = sorted(detectors)
        self.plans = []
        for image_type in self.image_types():
            key = image_type.lower()
            n = int(getattr(config, f"n_{key}"))
            n_discard = int(getattr(config, f"n_discard_{key}", 0))
            option = f"exp_times_{key}"
            times = expand_exposure_times(self.exposure_times_option(image_type), n, n_discard, option)
            if image_type == "FLAT" and any(t < 0.1 for t in times):
                raise ConfigError(f"{option}: flats need exposure times of at least 0.1 s, got {times}")
            self.plans.append(ImagePlan(image_type, n, n_discard, tuple(times)))
        self.check_pipetask_options(config)
        begin, end = config.certify_calib_begin_date, config.certify_calib_end_date
        if _parse_date(begin, "certify_calib_begin_date") >= _parse_date(end, "certify_calib_end_date"):
            raise ConfigError(
                f"certify_calib_begin_date ({begin}) must be before certify_calib_end_date ({end})"
            )
        if config.generate_calibrations and not config.calib_collection:
            raise ConfigError("generate_calibrations is true but calib_collection is empty")
        self.configure_instrument(config)
        if config.generate_calibrations and self._uses_default_certification(config):
            self.log.warning(
                "generate_calibrations is true with the default calib_collection (%s) and validity range "
                "[%s, %s): certifying there again will conflict with what a previous run certified. "
                "Consider a new calib_collection or a range for today.",
                config.calib_collection,
                begin,
                end,
            )

    def check_pipetask_options(self, config: types.SimpleNamespace) -> None:
        """Parse every ``config_options_*`` and check every collection name.

        What reaches pipetask is rebuilt from the parsed options (see
        `~lsst.ts.calibscripts.cp.butler.pipetask_options`), so a malformed or
        forbidden option fails now, before any image is taken.

        Raises
        ------
        ConfigError
            Naming each option at fault and what is allowed.
        """
        problems = []
        for name, value in sorted(vars(config).items()):
            try:
                if name.startswith("config_options_"):
                    parse_config_options(str(value), name)
                elif name.startswith("input_collections_"):
                    for collection in str(value).split(","):
                        if collection.strip():
                            check_collection_name(collection.strip(), name)
                elif name == "calib_collection" and value:
                    check_collection_name(str(value), name)
            except PipetaskOptionError as e:
                problems.append(ConfigProblem(str(e), None, name))
        if problems:
            raise ConfigError("; ".join(p.message for p in problems), problems)

    def configure_instrument(self, config: types.SimpleNamespace) -> None:
        """Check instrument-specific options (filters...); raise ConfigError."""

    def _uses_default_certification(self, config: types.SimpleNamespace) -> bool:
        properties = self.get_schema()["properties"]
        return all(
            getattr(config, name) == properties[name].get("default")
            for name in ("calib_collection", "certify_calib_begin_date", "certify_calib_end_date")
        )

    def set_metadata(self, metadata: types.SimpleNamespace) -> None:
        """Duration: exposures + read-out per image + expected processing."""
        n_images = sum(p.n_total for p in self.plans)
        exposure = sum(sum(p.exposure_times) for p in self.plans)
        assert self.config is not None
        wait = float(getattr(self.config, "wait_between_exposures", 0.0))
        jobs_per_type = int(bool(self.config.generate_calibrations)) + int(bool(self.config.do_verify))
        # Processing overlaps the next type's exposures; the last type's does not.
        last = self.plans[-1] if self.plans else None
        processing = 0.0
        if last is not None:
            processing = jobs_per_type * (
                self.job_overhead_estimate + self.job_per_image_estimate * last.n * len(self.detectors)
            )
        processing += len(self.extra_steps) * self.job_overhead_estimate
        metadata.duration = exposure + n_images * (_READOUT_TIME + wait) + processing
        metadata.nimages = n_images
        metadata.instrument = self.instrument_name
        metadata.filters = str(self.setup_instrument_options().get("filter") or "")
        metadata.totalCheckpoints = 2 + 2 * len(self.plans) + self.n_block_checkpoints

    # --- run -----------------------------------------------------------------

    async def run_block(self) -> None:
        """Take the images and process them; see the class description."""
        assert self.config is not None
        await self.camera.start_task
        await self.ocps_remote.start_task
        self.ocps = OcpsClient(self.ocps_remote, self.log, float(self.config.job_timeout))
        await self.camera.assert_all_enabled(f"{type(self).__name__} cannot run")
        await self._assert_ocps_enabled()
        self.flat_filter = await self.find_flat_filter()
        await asyncio.to_thread(self.preflight_checks)
        for image_type in self.image_types():
            self._certified[image_type] = asyncio.get_running_loop().create_future()
        try:
            await self.checkpoint("Setup instrument.")
            setup = {k: v for k, v in self.setup_instrument_options().items() if v is not None}
            if setup:
                await self.camera.setup_instrument(**setup)
            for plan in self.plans:
                exposures = await self.take_images(plan)
                self._tasks.append(asyncio.create_task(self._process_type(plan, exposures)))
            if self.extra_steps:
                self._tasks.append(asyncio.create_task(self._process_extra_steps()))
            await self.checkpoint("Data-taking part completed.")
            if self.running_jobs_description():
                self.log.info("Waiting for background processing: %s", self.running_jobs_description())
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            self._stopping = True
            for task in self._tasks:
                task.cancel()
            raise
        self.log.info("Final summary:\n%s", self.summary.describe())
        if self.summary.failures:
            raise CalibrationStepError(self.summary.reason())

    def running_jobs_description(self) -> str:
        """Describe the running OCPS jobs, for progress messages."""
        if self.ocps is None:
            return ""
        return ", ".join(f"{job.job_id} ({job.description})" for job in self.ocps.running)

    async def _assert_ocps_enabled(self) -> None:
        try:
            data = await self.ocps_remote.evt_summaryState.aget(timeout=self.camera.fast_timeout)
        except TimeoutError:
            raise RuntimeError(f"OCPS:{self.ocps_index} is not running (no summaryState)") from None
        if data.summaryState != State.ENABLED:
            raise RuntimeError(f"OCPS:{self.ocps_index} is not ENABLED: {State(data.summaryState).name}")

    def preflight_checks(self) -> None:
        """Check what is cheap to check before the first image.

        The repository opens; every input collection the run will use exists;
        an existing calib_collection is a CALIBRATION collection; and every
        job finds the certified calibrations it reads (`planned_jobs`) in its
        input collections, for every configured detector, valid now.

        Raises
        ------
        CalibrationStepError
            Listing every problem, with what to do about it.
        """
        assert self.config is not None
        repo = self.config.repo
        try:
            butler = Butler.from_config(str(repo))
        except Exception as e:
            raise CalibrationStepError(f"Cannot open the Butler repository {repo!r}: {e}") from e
        problems = []
        with butler:
            needed: set[str] = set()
            for purpose in self.input_purposes():
                needed.update(self.input_collections(purpose))
            missing = []
            for collection in sorted(needed):
                try:
                    butler.collections.get_info(collection)
                except MissingCollectionError:
                    missing.append(collection)
            if missing:
                problems.append(f"input collections missing from {repo}: {', '.join(missing)}")
            if self.config.generate_calibrations:
                try:
                    info = butler.collections.get_info(self.config.calib_collection)
                except MissingCollectionError:
                    pass
                else:
                    if info.type != CollectionType.CALIBRATION:
                        problems.append(
                            f"calib_collection {self.config.calib_collection!r} exists and is a "
                            f"{info.type.name} collection, not a CALIBRATION collection"
                        )
            # A job whose collections are missing is reported above; its calibrations cannot be.
            jobs = [job for job in self.planned_jobs() if not set(job.collections) & set(missing)]
            try:
                shortfalls = find_shortfalls(
                    butler,
                    jobs,
                    instrument=self.instrument_name,
                    detectors=self.detectors,
                    timespan=timespan_now(),
                    physical_filter=self.flat_filter,
                )
            except CalibrationNeedsError as e:
                problems.append(f"a pipeline cannot run with the configured options: {e}")
            else:
                problems += describe_shortfalls(shortfalls)
        if len(problems) == 1:
            raise CalibrationStepError(f"Cannot start: {problems[0]}")
        if problems:
            raise CalibrationStepError("Cannot start:\n" + "\n".join(f"- {p}" for p in problems))

    def planned_jobs(self) -> list[JobInputs]:
        """Return the OCPS jobs this run will submit that read calibrations, in order.

        Each with the configured input collections it reads them from, and
        the calibrations the run itself certifies before it (with
        generate_calibrations, a dark is made with this run's bias; the
        verification of a generated calibration uses that calibration).
        """
        assert self.config is not None
        config = self.config
        generate = bool(config.generate_calibrations)
        instrument = self.instrument_name
        made: set[str] = set()
        jobs: list[JobInputs] = []
        for image_type in self.image_types():
            key, product = image_type.lower(), _PRODUCTS[image_type]
            name = image_type.capitalize()
            if generate:
                jobs.append(
                    JobInputs(
                        step=f"{key} generation",
                        pipeline=f"${{CP_PIPE_DIR}}/pipelines/{instrument}/cp{name}.yaml",
                        options=self.config_options(key),
                        collections=tuple(self.input_collections(key)),
                        collection_options=(self.input_collections_option(key),),
                        provided=frozenset(made),
                        generating=True,
                    )
                )
            if config.do_verify:
                purpose = f"verify_{key}"
                # Verifying a generated calibration reads the generation's output chain,
                # which includes the generation's inputs, then the verification inputs.
                collections = self.input_collections(key) if generate else []
                options = [self.input_collections_option(key)] if generate else []
                jobs.append(
                    JobInputs(
                        step=f"{key} verification",
                        pipeline=f"${{CP_VERIFY_DIR}}/pipelines/{instrument}/verify{name}.yaml",
                        options="",
                        collections=tuple(dict.fromkeys(collections + self.input_collections(purpose))),
                        collection_options=(*options, self.input_collections_option(purpose)),
                        provided=frozenset(made | ({product} if generate else set())),
                        external=not generate,
                        generating=generate,
                    )
                )
            if generate:
                made.add(product)
        steps = {
            "DEFECTS": ("defects", "defects", "cpDefects.yaml", "defects generation"),
            "PTC": ("ptc", "ptc", "cpPtc.yaml", "the PTC"),
            "GAIN": ("ptc", "ptc", "cpPtc.yaml#cpPtcGainFromFlatPairs", "the gain from flat pairs"),
        }
        for step in self.extra_steps:
            purpose, options_key, pipeline, description = steps[step]
            jobs.append(
                JobInputs(
                    step=description,
                    pipeline=f"${{CP_PIPE_DIR}}/pipelines/{instrument}/{pipeline}",
                    options=self.config_options(options_key),
                    collections=tuple(self.input_collections(purpose)),
                    collection_options=(self.input_collections_option(purpose),),
                    # They wait for this run's bias, dark and flat (calib_collection first).
                    provided=frozenset(made),
                    generating=generate,
                )
            )
        return jobs

    def input_purposes(self) -> list[str]:
        """Jobs whose input collections this run uses."""
        assert self.config is not None
        purposes = []
        for image_type in self.image_types():
            key = image_type.lower()
            if self.config.generate_calibrations:
                purposes.append(key)
            if self.config.do_verify:
                purposes.append(f"verify_{key}")
        purposes += [step.lower() for step in self.extra_steps if step != "GAIN"]
        if "GAIN" in self.extra_steps:
            purposes.append("ptc")
        return purposes

    # --- images ----------------------------------------------------------------

    def _on_image_in_oods(self, data: BaseMessage) -> None:
        self._oods_seen[(data.obsid, f"{data.raft}_{data.sensor}")] = data
        self._oods_event.set()

    async def take_images(self, plan: ImagePlan) -> list[int]:
        """Take the images of a plan one by one.

        Returns the kept exposure ids that the OODS has.
        """
        assert self.config is not None
        await self.checkpoint(f"Taking {plan.n} {plan.noun}.")
        await self.assert_feasibility(plan.image_type)
        taken: list[int] = []
        self.exposures_taken[plan.image_type] = taken
        wait = float(getattr(self.config, "wait_between_exposures", 0.0))
        for i, exptime in enumerate(plan.exposure_times):
            if i > 0 and wait > 0:
                await asyncio.sleep(wait)
            (exposure,) = await self.camera.take_imgtype(
                plan.image_type,
                exptime,
                1,
                group_id=self.block_group_id,
                reason=self.reason,
                program=self.program,
                note=self.note,
            )
            taken.append(exposure)
            self.log.info(
                "%s %d of %d taken: %d (%.1f s)%s",
                plan.image_type,
                i + 1,
                plan.n_total,
                exposure,
                exptime,
                " (discarded)" if i < plan.n_discard else "",
            )
        kept = taken[plan.n_discard :]
        present = await self.wait_for_oods(plan.image_type, kept)
        self.exposures_used[plan.image_type] = present
        # Production's text: the ids as a Python tuple, e.g. "Images taken: (1, 2); type: BIAS".
        await self.checkpoint(f"Images taken: {tuple(present)}; type: {plan.image_type}")
        return present

    async def assert_feasibility(self, image_type: str) -> None:
        """Check that images of ``image_type`` can be taken now; called before each image type.

        Does nothing here; instruments override it (e.g. the dome's state
        before flats).

        Parameters
        ----------
        image_type : `str`
            BIAS, DARK or FLAT.

        Raises
        ------
        RuntimeError
            If the images cannot be taken.
        """
        return None

    def _image_name(self, exposure: int) -> str:
        return self.instrument.obs_id(exposure // 100_000, exposure % 100_000)

    async def wait_for_oods(self, image_type: str, exposures: list[int]) -> list[int]:
        """Wait until the OODS has every (exposure, detector), or ``oods_timeout``.

        Returns the exposures ingested for every detector; reports exactly
        which exposures/detectors are missing or failed.
        """
        assert self.config is not None
        detectors = [self.instrument.detector(d).full_name for d in self.detectors]
        wanted = {(self._image_name(e), d) for e in exposures for d in detectors}
        loop = asyncio.get_running_loop()
        timeout = float(self.config.oods_timeout)
        deadline = loop.time() + timeout
        # Progress is reported at most this many times while waiting.
        checks = min(int(getattr(self.config, "max_counter_archiver_check", 12)), 12)
        next_report = loop.time() + timeout / checks
        check = 0
        while not wanted <= set(self._oods_seen):
            now = loop.time()
            if now >= deadline:
                break
            if now >= next_report:
                check += 1
                next_report += timeout / checks
                self.log.info(
                    "Waiting for the OODS: %d of %d %s raws (one per image and detector) announced "
                    "(check %d of %d)",
                    len(wanted & set(self._oods_seen)),
                    len(wanted),
                    image_type,
                    check,
                    checks,
                )
            self._oods_event.clear()
            try:
                await asyncio.wait_for(self._oods_event.wait(), min(deadline, next_report) - now)
            except TimeoutError:
                continue
        problems: list[str] = []
        present = []
        for exposure in exposures:
            name = self._image_name(exposure)
            bad = []
            for detector in detectors:
                data = self._oods_seen.get((name, detector))
                if data is None:
                    bad.append(f"{detector} not announced by the OODS")
                elif data.statusCode != 0:
                    bad.append(f"{detector} failed ingestion: {data.description}")
            if bad:
                problems.append(f"{exposure} ({name}): " + "; ".join(bad))
            else:
                present.append(exposure)
        if problems:
            self.log.warning(
                "%s: %d of %d exposures are not available after %s s; continuing with the %d present. "
                "Missing:\n  %s",
                image_type,
                len(exposures) - len(present),
                len(exposures),
                self.config.oods_timeout,
                len(present),
                "\n  ".join(problems),
            )
            self.summary.step(image_type).notes.append("missing from the OODS: " + "; ".join(problems))
        if not present:
            raise CalibrationStepError(f"None of the {image_type} exposures {exposures} reached the OODS")
        return present

    # --- processing ---------------------------------------------------------

    def data_query(self, exposures: Sequence[int]) -> str:
        """Butler query selecting the exposures on the configured detectors."""
        return (
            f"instrument='{self.instrument_name}' AND detector IN ({', '.join(map(str, self.detectors))}) "
            f"AND exposure IN ({', '.join(map(str, exposures))})"
        )

    def pipetask_config(self, inputs: Sequence[str], options: str) -> str:
        """Return the ``config`` of an OCPS execute command."""
        assert self.config is not None
        return PipetaskOptions(
            overrides=parse_config_options(options).overrides,
            inputs=tuple(dict.fromkeys(inputs)),
            processes=int(self.config.n_processes),
            register_dataset_types=True,
        ).as_text()

    async def _run_job(
        self, pipeline: str, inputs: Sequence[str], options: str, exposures: Sequence[int], what: str
    ) -> OcpsJob:
        assert self.ocps is not None
        return await self.ocps.run(
            pipeline=pipeline,
            config=self.pipetask_config(inputs, options),
            data_query=self.data_query(exposures),
            description=what,
        )

    async def _wait_for_dependencies(self, image_type: str) -> None:
        for needed in _NEEDS[image_type]:
            future = self._certified.get(needed)
            if future is None:
                continue  # not part of this run: it comes from the input collections
            if not await asyncio.shield(future):
                raise CalibrationStepError(
                    f"not generated: we need a certified {needed.lower()} to make a combined "
                    f"{image_type.lower()}, and the {needed.lower()} was not certified"
                )

    async def _process_type(self, plan: ImagePlan, exposures: list[int]) -> None:
        image_type = plan.image_type
        record = self.summary.step(image_type)
        record.exposures = exposures
        certified = False
        try:
            certified = await self._generate_verify_certify(image_type, exposures)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            record.fail(e)
            self.log.error("%s failed: %s", image_type, e)
        finally:
            future = self._certified.get(image_type)
            if future is not None and not future.done():
                future.set_result(certified)

    async def _generate_verify_certify(self, image_type: str, exposures: list[int]) -> bool:
        """Process one type; return whether it was certified."""
        assert self.config is not None
        config = self.config
        key = image_type.lower()
        record = self.summary.step(image_type)
        instrument = self.instrument_name
        generation: OcpsJob | None = None
        if config.generate_calibrations:
            await self._wait_for_dependencies(image_type)
            inputs = self._with_new_calibrations(image_type, self.input_collections(key))
            generation = await self._run_job(
                f"${{CP_PIPE_DIR}}/pipelines/{instrument}/cp{image_type.capitalize()}.yaml",
                inputs,
                self.config_options(key),
                exposures,
                f"{key} generation",
            )
            record.generation_collection = generation.output_collection
        accepted = True
        if config.do_verify:
            if generation is not None:
                verify_inputs = [generation.output_collection]
                verify_inputs = self._with_new_calibrations(image_type, verify_inputs)
            else:
                verify_inputs = []
            verify_inputs += self.input_collections(f"verify_{key}")
            # The config_options_<type> address the generation pipeline's task labels.
            verification = await self._run_job(
                f"${{CP_VERIFY_DIR}}/pipelines/{instrument}/verify{image_type.capitalize()}.yaml",
                verify_inputs,
                "",
                exposures,
                f"{key} verification",
            )
            record.verification_collection = verification.output_collection
            accepted = await self._judge(image_type, generation, verification)
        if generation is None:
            if not accepted:
                record.notes.append(
                    "external verification rejected the images (reported above); nothing to certify"
                )
            return False
        if not accepted:
            raise CalibrationStepError(f"{image_type} calibration failed verification and was not certified")
        await self._certify(image_type, _PRODUCTS[image_type], generation.output_collection)
        return True

    def _with_new_calibrations(self, image_type: str, inputs: list[str]) -> list[str]:
        """Put calib_collection first when this run certified what the type needs."""
        assert self.config is not None
        if self.config.generate_calibrations and any(n in self._certified for n in _NEEDS[image_type]):
            return [self.config.calib_collection, *inputs]
        return inputs

    async def _judge(self, image_type: str, generation: OcpsJob | None, verification: OcpsJob) -> bool:
        """Apply the majority rule to the verification statistics and report."""
        stats = await asyncio.to_thread(self._read_stats, image_type, verification.output_collection)
        outcome = apply_majority_rule(stats, self.threshold(image_type), len(self.detectors))
        record = self.summary.step(image_type)
        record.verification = (
            "all tests passed"
            if outcome.all_passed
            else f"{'accepted' if outcome.accepted else 'rejected'} by the majority rule "
            f"({len(outcome.failed_exposures)} of {len(outcome.failures)} exposures failed; "
            f"limit {outcome.max_failed_exposures})"
        )
        verdict = verdict_message(image_type, outcome, will_certify=generation is not None)
        if outcome.all_passed:
            self.log.info(verdict)
            return True
        report = format_verification_report(
            image_type,
            outcome,
            threshold_option=self.threshold_option(image_type),
            generation_collection=generation.output_collection if generation else None,
            verification_collection=verification.output_collection,
        )
        self.log.warning(report)
        self.log.warning(verdict)
        return outcome.accepted

    def _read_stats(self, image_type: str, collection: str) -> dict[Any, Any]:
        assert self.config is not None
        with Butler.from_config(str(self.config.repo), collections=[collection]) as butler:
            stats = butler.get(f"verify{image_type.capitalize()}Stats", instrument=self.instrument_name)
        return dict(stats)

    async def _certify(self, label: str, dataset_type: str, collection: str) -> None:
        assert self.config is not None
        if self._stopping:
            raise CalibrationStepError("not certified: the script is stopping")
        config = self.config
        try:
            refs = await asyncio.to_thread(
                certify_calibrations,
                config.repo,
                collection,
                config.calib_collection,
                dataset_type,
                begin_date=config.certify_calib_begin_date,
                end_date=config.certify_calib_end_date,
            )
        except CertificationError as e:
            raise CalibrationStepError(f"certification of {dataset_type} failed: {e}") from e
        where = (
            f"{config.calib_collection} for [{config.certify_calib_begin_date}, "
            f"{config.certify_calib_end_date}) ({len(refs)} detector(s))"
        )
        self.summary.step(label).certified = where
        self.log.info("%s certified into %s", dataset_type, where)

    async def _process_extra_steps(self) -> None:
        """Defects, PTC and gains after the flats (BIAS_DARK_FLAT mode).

        With generate_calibrations they use (and wait for) this run's
        certified bias, dark and flat, and their products are certified too.
        """
        assert self.config is not None
        if self.config.generate_calibrations:
            for image_type in ("BIAS", "DARK", "FLAT"):
                future = self._certified.get(image_type)
                if future is not None and not await asyncio.shield(future):
                    reason = (
                        f"not run: it needs this run's certified {image_type.lower()}, "
                        f"which was not certified"
                    )
                    for step in self.extra_steps:
                        self.summary.step(step).fail(reason)
                        self.log.error("%s %s", step, reason)
                    return
        flats = self.exposures_used.get("FLAT", [])
        darks = self.exposures_used.get("DARK", [])
        for step in self.extra_steps:
            if step == "DEFECTS":
                await self.run_extra_step(step, lambda: self._defects(darks + flats))
            elif step == "PTC":
                await self.run_extra_step(step, lambda: self._ptc(flats, full=True))
            elif step == "GAIN":
                await self.run_extra_step(step, lambda: self._ptc(flats, full=False))

    def _extra_inputs(self, purpose: str) -> list[str]:
        assert self.config is not None
        inputs = self.input_collections(purpose)
        if self.config.generate_calibrations:
            inputs = [self.config.calib_collection, *inputs]
        return inputs

    async def _defects(self, exposures: list[int]) -> None:
        record = self.summary.step("DEFECTS")
        record.exposures = exposures
        job = await self._run_job(
            f"${{CP_PIPE_DIR}}/pipelines/{self.instrument_name}/cpDefects.yaml",
            self._extra_inputs("defects"),
            self.config_options("defects"),
            exposures,
            "defects generation",
        )
        record.generation_collection = job.output_collection
        assert self.config is not None
        if self.config.generate_calibrations:
            await self._certify("DEFECTS", "defects", job.output_collection)

    async def _ptc(self, flats: list[int], *, full: bool) -> None:
        """Run the PTC (``full``) or the gain-from-pairs subset; report gains."""
        assert self.config is not None
        name = "PTC" if full else "GAIN"
        record = self.summary.step(name)
        flat_plan = next(p for p in self.plans if p.image_type == "FLAT")
        times = dict(
            zip(
                self.exposures_taken["FLAT"][flat_plan.n_discard :],
                flat_plan.kept_exposure_times,
                strict=False,
            )
        )
        usable = [e for e in flats if e in times]
        pairs = [(usable[i], usable[j]) for i, j in flat_pairs([times[e] for e in usable])]
        if not pairs:
            raise CalibrationStepError("no pair of flats with equal exposure times reached the OODS")
        exposures = [e for pair in pairs for e in pair]
        record.exposures = exposures
        pipeline = f"${{CP_PIPE_DIR}}/pipelines/{self.instrument_name}/cpPtc.yaml"
        if not full:
            pipeline += "#cpPtcGainFromFlatPairs"
        job = await self._run_job(
            pipeline,
            self._extra_inputs("ptc"),
            self.config_options("ptc"),
            exposures,
            f"{name.lower()} from flat pairs",
        )
        record.generation_collection = job.output_collection
        gains = await asyncio.to_thread(self._read_pair_gains, job.output_collection, pairs)
        self.pair_gains = gains
        self.log.info("%s", format_gains_table(gains, self.instrument))
        if full and self.config.generate_calibrations:
            await self._certify("PTC", "ptc", job.output_collection)

    def _read_pair_gains(
        self, collection: str, pairs: list[tuple[int, int]]
    ) -> dict[tuple[int, int], dict[int, dict[str, float]]]:
        """Per pair, per detector id, per amp: the single-pair gain."""
        assert self.config is not None
        gains: dict[tuple[int, int], dict[int, dict[str, float]]] = {}
        with Butler.from_config(str(self.config.repo), collections=[collection]) as butler:
            for pair in pairs:
                gains[pair] = {}
                for detector in self.detectors:
                    extract = butler.get(
                        "cpPtcExtract", instrument=self.instrument_name, detector=detector, exposure=pair[0]
                    )
                    gains[pair][detector] = {amp: float(g) for amp, g in extract.gain.items()}
        return gains

    async def run_extra_step(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one extra step, recording a failure instead of raising."""
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.summary.step(name).fail(e)
            self.log.error("%s failed: %s", name, e)

    # --- stop ------------------------------------------------------------------

    async def cleanup(self) -> None:
        """Abort this script's OCPS jobs, stop background work, list what was taken."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self.ocps is not None and self.ocps.running:
            await self.ocps.abort_running()
        if self.exposures_taken:
            taken = "; ".join(f"{t}: {' '.join(map(str, ids))}" for t, ids in self.exposures_taken.items())
            self.log.info("Exposures taken: %s", taken)
        await self.camera.close()
        await self.ocps_remote.close()


def _parse_date(value: str, option: str) -> Time:
    """Parse a validity-range bound as certification will, at configure time."""
    try:
        time = parse_date(value)
    except ValueError as e:
        raise ConfigError(
            f"{option}={value!r}: {e}", [ConfigProblem(f"{option}: {e}", None, option)]
        ) from None
    assert time is not None
    return time
