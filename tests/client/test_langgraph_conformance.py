"""LangGraph's own conformance suite (langgraph-checkpoint-conformance) against LogdeckSaver
talking to a live server: every capability, base and extended, and none skipped."""

from __future__ import annotations

import asyncio

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from logdeck_client import AsyncLogdeck
from logdeck_client.langgraph import LogdeckSaver

from tests.client.conftest import LiveApi


def test_it_passes_every_capability_of_langgraphs_conformance_suite(live_api: LiveApi) -> None:
    @checkpointer_test(name="LogdeckSaver")
    async def logdeck_saver():
        async with AsyncLogdeck(live_api.url, live_api.key) as client:
            yield LogdeckSaver(agent="conformance", async_client=client)

    report = asyncio.run(validate(logdeck_saver))
    results = report.results
    assert set(results) == {c.value for c in Capability}
    failures = {
        name: result.failures for name, result in results.items() if result.passed is not True
    }
    assert not failures, failures
    for name, result in results.items():
        assert result.detected, f"{name} not detected"
        assert result.tests_failed == 0 and result.tests_skipped == 0, name
        assert result.tests_passed > 0, name
