"""What the sync and async clients share: building requests and reading responses."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ridgerider.client.errors import error_for

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame
    from torch import Tensor

__all__ = ["PREFIX", "Call", "to_dataframe", "to_tensor", "unwrap"]

PREFIX = "/api/v1"
M = TypeVar("M")


@dataclass
class Call:
    """One HTTP request of the API (relative URL) and the type its answer parses to."""

    method: str
    path: str
    model: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = False
    """Safe to send again after a connection error (reads; submissions with a key)."""

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request."""
        params = {k: v for k, v in self.params.items() if v is not None}
        return http.build_request(
            self.method, PREFIX + self.path, params=params, json=self.json, headers=self.headers
        )


def unwrap(response: httpx.Response, model: Any) -> Any:
    """The parsed body of a successful response; an SDK exception otherwise."""
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise error_for(response.status_code, detail)
    if model is None:
        return response.content
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate_json(response.content)
    return TypeAdapter(model).validate_json(response.content)


def to_tensor(npy: bytes) -> Tensor:
    """A ``.npy`` body as a torch tensor (torch and numpy are imported only here)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.load(io.BytesIO(npy), allow_pickle=False))


def to_dataframe(csv: bytes) -> DataFrame:
    """A ``nodes.csv`` body as a pandas DataFrame (pandas is optional: imported only here)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "to_dataframe needs pandas, which is not installed: pip install pandas"
        ) from exc
    return pd.read_csv(io.BytesIO(csv))
