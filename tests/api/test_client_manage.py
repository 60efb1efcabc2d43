"""The SDK's names, tags, filters, delete and data frame (sync and asyncio)."""

from __future__ import annotations

import asyncio
import importlib.util

import httpx
import pytest

from ridgerider.client import AsyncClient, Client, NotFound
from ridgerider.client import ValidationError as ApiValidationError

from .conftest import PARAMS, PROBLEM

HAS_PANDAS = importlib.util.find_spec("pandas") is not None


def test_sync_client_names_filters_deletes(make_client) -> None:
    with make_client(dev=True, workers=0) as http:
        rr = Client(http=http)
        a = rr.submit(PROBLEM, PARAMS, seed=1, name="Sweep one", tags=["paper", "fig2"])
        b = rr.submit(PROBLEM, PARAMS, seed=2, tags=("fig2",))
        assert (a.name, a.tags, b.name, b.tags) == ("Sweep one", ["paper", "fig2"], None, ["fig2"])
        assert [j.id for j in rr.list(tag="fig2").items] == [b.id, a.id]
        assert [j.id for j in rr.list(name="sweep", problem=PROBLEM).items] == [a.id]
        assert rr.list(problem="lever-game").items == []
        assert rr.get(a.id).solutions == 0
        with pytest.raises(ApiValidationError) as bad:
            rr.submit(PROBLEM, PARAMS, name="x" * 200)
        assert set(bad.value.fields) == {"name"}
        if HAS_PANDAS:
            frame = rr.to_dataframe(a.id)
            assert list(frame.columns[:3]) == ["id", "parent_id", "key"]
        else:
            with pytest.raises(ImportError, match="needs pandas"):
                rr.to_dataframe(a.id)
        assert rr.delete(a.id) is None
        with pytest.raises(NotFound):
            rr.get(a.id)
        with pytest.raises(NotFound):
            rr.delete(a.id)
        assert [j.id for j in rr.list().items] == [b.id]


def test_async_client_names_filters_deletes(make_client) -> None:
    with make_client(dev=True, workers=0) as http:
        app = http.app

        async def main() -> None:
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient(
                http=httpx.AsyncClient(transport=transport, base_url="http://t")
            ) as rr:
                job = await rr.submit(PROBLEM, PARAMS, name="async", tags=["t1"])
                assert (job.name, job.tags) == ("async", ["t1"])
                assert [j.id for j in (await rr.list(tag="t1", name="ASY")).items] == [job.id]
                if not HAS_PANDAS:
                    with pytest.raises(ImportError, match="needs pandas"):
                        await rr.to_dataframe(job.id)
                await rr.delete(job.id)
                with pytest.raises(NotFound):
                    await rr.get(job.id)

        asyncio.run(main())
