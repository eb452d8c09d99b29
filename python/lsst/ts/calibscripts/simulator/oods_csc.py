"""Simulated OODS: ingest each raw into the Butler and announce it."""

from __future__ import annotations

__all__ = ["OodsCsc", "OodsFaults"]

import asyncio
import dataclasses
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsst.daf.butler import Butler

from ..cp.butler.ingest import ingest_raws
from ..cp.camera.description import get_instrument_description
from ..sal import BaseCsc, BaseMessage, Domain, Remote, State


@dataclasses.dataclass
class OodsFaults:
    """Faults to inject, for tests; none by default.

    Attributes
    ----------
    drop : `set` [`str`]
        Image names (or ``"<image name>/<sensor>"``) whose ``imageInOODS``
        is never written (the file is not ingested either).
    fail : `set` [`str`]
        Image names (or ``"<image name>/<sensor>"``) that are reported with
        a non-zero statusCode instead of being ingested.
    """

    drop: set[str] = dataclasses.field(default_factory=set)
    fail: set[str] = dataclasses.field(default_factory=set)


class OodsCsc(BaseCsc):
    """Observatory Operations Data Service for one instrument.

    Follows the camera's ``largeFileObjectAvailable``; ingests each raw
    file into ``<instrument>/raw/all`` of the repository (a file inside the
    repository's directory in place, by its path relative to the
    repository; any other by absolute path, ``direct``), then writes
    ``imageInOODS`` (statusCode 0) for that image and detector. A failed
    ingest writes ``imageInOODS`` with statusCode 1 and the reason.

    Parameters
    ----------
    name : `str`
        ``ATOODS`` or ``CCOODS``.
    camera : `str`
        Camera component (``ATCamera``, ``CCCamera``).
    instrument : `str`
        Butler instrument name.
    repo : `pathlib.Path`
        Butler repository.
    initial_state : `State`, optional
        Initial summary state.
    domain : `Domain`, optional
        Domain to use.
    """

    def __init__(
        self,
        name: str,
        camera: str,
        instrument: str,
        repo: Path,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        self.instrument = get_instrument_description(instrument)
        self.repo = repo
        self._repo_root = Path(repo).expanduser().resolve()
        self.faults = OodsFaults()
        self._butler: Butler | None = None
        # Ingests touch one registry: do them one at a time, in arrival order.
        self._lock = asyncio.Lock()
        super().__init__(name, initial_state=initial_state, domain=domain)
        self.camera = Remote(
            self.domain, camera, readonly=True, include=["largeFileObjectAvailable"], evt_max_history=0
        )
        self.camera.evt_largeFileObjectAvailable.callback = self._on_file

    def _get_butler(self) -> Butler:
        if self._butler is None:
            self._butler = Butler.from_config(str(self.repo), writeable=True)
        return self._butler

    async def _on_file(self, data: BaseMessage) -> None:
        if self.summary_state != State.ENABLED:
            self.log.warning("Not ENABLED: image %s is not ingested", data.id)
            return
        path = Path(unquote(urlparse(data.url).path))
        # Raw files are named <image name>_<raft>_<sensor>.fits.
        sensor = "_".join(path.stem.split("_")[-2:])
        detector = self.instrument.detector(sensor)
        key = f"{data.id}/{sensor}"
        if data.id in self.faults.drop or key in self.faults.drop:
            self.log.warning("Injected fault: dropping %s", key)
            return
        status, description = 0, f"{path.name} ingested"
        if data.id in self.faults.fail or key in self.faults.fail:
            status, description = 1, f"Injected fault: ingest of {path.name} failed"
        else:
            try:
                # The camera writes absolute, resolved paths: a lexical check is enough.
                transfer = None if path.is_relative_to(self._repo_root) else "direct"
                async with self._lock:
                    await asyncio.to_thread(ingest_raws, self._get_butler(), [path], transfer=transfer)
            except Exception as e:
                status, description = 1, f"Ingest of {path} failed: {e}"
                self.log.error(description)
        await self.evt_imageInOODS.set_write(
            force_output=True,
            camera=self.instrument.name,
            obsid=data.id,
            raft=detector.raft,
            sensor=detector.name_in_raft,
            statusCode=status,
            description=description,
        )

    async def close_tasks(self) -> None:
        """Stop following the camera and close the Butler."""
        await self.camera.close()
        if self._butler is not None:
            self._butler.close()
        await super().close_tasks()
