"""IdiomScript: a SAL script written as for salobj, driving the Test CSC."""

__all__ = ["IdiomScript"]

import asyncio

import yaml

from lsst.ts.calibscripts import salobj, utils


class IdiomScript(salobj.BaseScript):
    """Enable a Test CSC (if given an index), send it scalars, read them back."""

    def __init__(self, index, descr="Drive the Test CSC"):
        super().__init__(index=index, descr=descr)
        self.test_remote = None
        self.seen = None

    @classmethod
    def get_schema(cls):
        schema_yaml = """
            $schema: http://json-schema.org/draft-07/schema#
            $id: https://example.org/idiom_script.yaml
            title: IdiomScript v1
            description: Configuration for IdiomScript.
            type: object
            properties:
              test_index:
                description: SAL index of the Test CSC; 0 for none.
                type: integer
                default: 0
              value:
                description: Value of int0 to send.
                type: integer
                default: 7
              fail_run:
                description: Fail in run?
                type: boolean
                default: false
            additionalProperties: false
        """
        return yaml.safe_load(schema_yaml)

    async def configure(self, config):
        self.config = config
        if config.test_index:
            self.test_remote = salobj.Remote(domain=self.domain, name="Test", index=config.test_index)
            await self.test_remote.start_task

    def set_metadata(self, metadata):
        metadata.duration = 1
        metadata.nimages = 0

    async def run(self):
        await self.checkpoint("start")
        if self.test_remote is not None:
            await salobj.set_summary_state(self.test_remote, salobj.State.ENABLED, override="idiom.yaml")
            data = self.test_remote.cmd_setScalars.DataType()
            data.int0 = self.config.value
            data.string0 = self.next_supplemented_group_id()
            self.test_remote.evt_scalars.flush()
            await self.test_remote.cmd_setScalars.start(data, timeout=10)
            self.seen = await self.test_remote.evt_scalars.next(flush=False, timeout=10)
            self.log.info(f"Read back int0={self.seen.int0} at {utils.current_tai():.1f}")
        await asyncio.sleep(0)
        await self.checkpoint("end")
        if self.config.fail_run:
            raise salobj.ExpectedError("failing as configured")
