"""Branches (units of work) and nodes (their results), with a pickle-free byte encoding.

A branch is everything a worker needs to ride one ridge: the branch point θ, the ridge ``e`` and
its eigenvalue, the fingerprint of choices that led here and a seed. The root branch (the MIS)
has no ridge. A branch serialises to bytes as a small binary header followed by raw little-endian
tensor data, so any process or machine can replay it and nothing is ever unpickled. The header
is fixed-size fields and the fingerprint as 32-bit words (``RRB2``: 46 bytes plus 4 per choice);
records of the first format (``RRB1``: a JSON header, about 240 bytes at depth 3, most of a
compacted row) still decode, and a branch whose numbers do not fit the binary fields (a seed
beyond 64 bits) is still written in it.

An archive stores a child branch without θ (``has_theta: false``): a child's θ is its parent's
end θ, stored once in the parent's row, and the reader passes it back to :meth:`Branch.from_bytes`.
A *compacted* branch (``has_direction: false`` at depth > 0) keeps only its header: its ridge is
recomputed from its parent's end θ and seed (``core.expand.restore``). Records written before
either existed carry both tensors and still decode.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Branch",
    "Choice",
    "Fingerprint",
    "Node",
    "child_seed",
    "compact_bytes",
    "fingerprint_key",
    "tensor_from_bytes",
    "tensor_to_bytes",
]

Choice = tuple[int, int]
"""One branching choice: (eigen-index, sign ±1)."""
Fingerprint = tuple[Choice, ...]

_MAGIC = b"RRB1"
"""The first format: ``RRB1 | u32 length | JSON header | tensors``."""
_MAGIC2 = b"RRB2"
"""The binary format: ``RRB2 | fixed fields | u32 per choice | tensors``."""
_FIXED = struct.Struct("<BBIdqdqI")
"""dtype code, flags, n, eigenvalue, seed, loss, parent seed, depth."""
_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_CODES = ("float64", "float32")
"""dtype names by their code in a binary header."""
_HAS_THETA, _HAS_DIRECTION, _HAS_EIGENVALUE, _HAS_LOSS, _HAS_PARENT = 1, 2, 4, 8, 16
_FLAGS = 31
_LITTLE = sys.byteorder == "little"


def fingerprint_key(fingerprint: Fingerprint) -> str:
    """Stable text form of a fingerprint, e.g. ``"0+.3-"`` (``""`` for the root)."""
    return ".".join(f"{i}{'+' if s > 0 else '-'}" for i, s in fingerprint)


def child_seed(seed: int, choice: Choice) -> int:
    """Seed of a child branch: a pure function of the parent's seed and the choice taken."""
    digest = hashlib.sha256(f"{seed}:{choice[0]}:{choice[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def tensor_to_bytes(t: Tensor) -> bytes:
    """Raw little-endian bytes of a CPU copy of a 1-D float tensor."""
    arr = t.detach().to("cpu").numpy()  # tobytes() copies in C order whatever the strides
    return (arr if _LITTLE else arr.astype(arr.dtype.newbyteorder("<"))).tobytes()


def tensor_from_bytes(data: bytes, dtype: str) -> Tensor:
    """Inverse of :func:`tensor_to_bytes`."""
    raw = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))
    return torch.from_numpy(raw.astype(np.dtype(dtype)))  # a copy: native order, writable


@dataclass(frozen=True)
class Branch:
    """A ridge waiting to be ridden (or, with ``direction=None``, the root at the MIS)."""

    theta: Tensor
    direction: Tensor | None
    eigenvalue: float | None
    fingerprint: Fingerprint
    seed: int
    loss: float | None = None
    """Loss at the branch point (orders the priority frontier)."""
    parent_seed: int | None = None
    """Seed of the parent branch (children of ``core.expand`` record it): with the parent's end
    θ it determines this branch's ridge, so a compacted branch can be restored."""

    @property
    def depth(self) -> int:
        """Number of choices made to get here (0 for the root)."""
        return len(self.fingerprint)

    @property
    def key(self) -> str:
        """Text form of the fingerprint, unique within a job."""
        return fingerprint_key(self.fingerprint)

    @property
    def compacted(self) -> bool:
        """A non-root branch whose ridge was dropped (restore it before riding)."""
        return self.direction is None and bool(self.fingerprint)

    def to_bytes(self, *, theta: bool = True, direction: bool = True) -> bytes:
        """Encode as ``RRB2 | binary header | θ bytes | e bytes`` (see the module's docstring).

        ``theta=False`` leaves θ out (the parent's end θ: pass it back to :meth:`from_bytes`);
        ``direction=False`` leaves the ridge out (a compacted branch, or a ridden one).
        """
        dtype = str(self.theta.dtype).removeprefix("torch.")
        theta_b = tensor_to_bytes(self.theta) if theta else b""
        has_direction = direction and self.direction is not None
        dir_b = tensor_to_bytes(self.direction) if has_direction else b""  # type: ignore[arg-type]
        header: dict[str, Any] = {
            "dtype": dtype,
            "n": self.theta.numel(),
            "has_direction": has_direction,
            "eigenvalue": self.eigenvalue,
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "loss": self.loss,
        }
        if not theta:
            header["has_theta"] = False
        if self.parent_seed is not None:
            header["parent_seed"] = self.parent_seed
        return _frame(header) + theta_b + dir_b

    @classmethod
    def from_bytes(cls, data: bytes, theta: bytes | None = None) -> Branch:
        """Decode bytes written by :meth:`to_bytes`; raises ``ValueError`` on malformed input.

        ``theta``: the raw end θ of the parent (its row's ``theta_data``), for a record stored
        without θ; ignored when the record has its own.
        """
        header, body = _split(data)
        try:
            dtype = header["dtype"]
            n = int(header["n"])
            has_direction = bool(header["has_direction"])
            has_theta = bool(header.get("has_theta", True))
            eigenvalue = None if header["eigenvalue"] is None else float(header["eigenvalue"])
            fingerprint = tuple((int(i), int(s)) for i, s in header["fingerprint"])
            seed = int(header["seed"])
            loss = None if header["loss"] is None else float(header["loss"])
            parent = header.get("parent_seed")
            parent_seed = None if parent is None else int(parent)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed branch header: {exc!r}") from None
        if dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}")
        if n < 0 or any(s not in (1, -1) for _, s in fingerprint):
            raise ValueError("malformed branch header: bad size or sign")
        width = np.dtype(dtype).itemsize * n
        expected = width * (int(has_theta) + int(has_direction))
        if len(body) != expected:
            raise ValueError(f"branch body has {len(body)} bytes, expected {expected}")
        if not has_theta:
            if theta is None or len(theta) != width:
                raise ValueError("branch stored without θ: pass its parent's end θ")
            body = theta + body
        theta_t = tensor_from_bytes(body[:width], dtype)
        direction = tensor_from_bytes(body[width:], dtype) if has_direction else None
        return cls(theta_t, direction, eigenvalue, fingerprint, seed, loss, parent_seed)


def _frame(header: dict[str, Any]) -> bytes:
    """A record's magic and header: binary (``RRB2``) unless a number does not fit its field."""
    fp = header["fingerprint"]
    eigenvalue, loss, parent = header["eigenvalue"], header["loss"], header.get("parent_seed")
    flags = (
        _HAS_THETA * header.get("has_theta", True)
        | _HAS_DIRECTION * header["has_direction"]
        | _HAS_EIGENVALUE * (eigenvalue is not None)
        | _HAS_LOSS * (loss is not None)
        | _HAS_PARENT * (parent is not None)
    )
    try:  # struct refuses what does not fit: a seed beyond 64 bits, an index beyond 31
        fixed = _FIXED.pack(
            _CODES.index(header["dtype"]), flags, header["n"],
            0.0 if eigenvalue is None else eigenvalue, header["seed"],
            0.0 if loss is None else loss, parent or 0, len(fp),
        )  # fmt: skip
        words = struct.pack(f"<{len(fp)}I", *[(i << 1) | (s < 0) for i, s in fp])
    except (struct.error, ValueError):
        h = json.dumps(header, separators=(",", ":")).encode()
        return _MAGIC + struct.pack("<I", len(h)) + h
    return _MAGIC2 + fixed + words


def _split_binary(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header (as :meth:`Branch.to_bytes` builds it) and tensor bytes of an ``RRB2`` record."""
    try:
        code, flags, n, eigenvalue, seed, loss, parent, depth = _FIXED.unpack_from(data, 4)
        start = 4 + _FIXED.size
        words = struct.unpack_from(f"<{depth}I", data, start)
    except struct.error as exc:
        raise ValueError(f"malformed branch header: {exc}") from None
    if code >= len(_CODES) or flags & ~_FLAGS:
        raise ValueError("malformed branch header: unknown dtype or flags")
    header: dict[str, Any] = {
        "dtype": _CODES[code],
        "n": n,
        "has_direction": bool(flags & _HAS_DIRECTION),
        "eigenvalue": eigenvalue if flags & _HAS_EIGENVALUE else None,
        "fingerprint": [[w >> 1, -1 if w & 1 else 1] for w in words],
        "seed": seed,
        "loss": loss if flags & _HAS_LOSS else None,
    }
    if not flags & _HAS_THETA:
        header["has_theta"] = False
    if flags & _HAS_PARENT:
        header["parent_seed"] = parent
    return header, data[start + 4 * depth :]


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the tensor bytes of an encoded branch (either format)."""
    if len(data) >= 4 and data[:4] == _MAGIC2:
        return _split_binary(data)
    if len(data) < 8 or data[:4] != _MAGIC:
        raise ValueError("not a ridgerider branch (bad magic)")
    (hlen,) = struct.unpack("<I", data[4:8])
    try:
        header = json.loads(data[8 : 8 + hlen])
    except ValueError as exc:
        raise ValueError(f"malformed branch header: {exc!r}") from None
    if not isinstance(header, dict):
        raise ValueError("malformed branch header: not an object")
    return header, data[8 + hlen :]


def compact_bytes(data: bytes, *, ridden: bool) -> bytes | None:
    """The header-only form of a non-root branch record; ``None`` if it cannot or need not shrink.

    A ridden branch (``ridden=True``) is never ridden again: it keeps its header, its θ is its
    parent's end θ. An unridden one is compacted only if it records its parent's seed (else its
    ridge could not be restored: records of before ``parent_seed`` keep their tensors).
    """
    header, body = _split(data)
    if not header.get("fingerprint") or not body:
        return None  # the root, or already header-only
    if not ridden and header.get("parent_seed") is None:
        return None
    header |= {"has_theta": False, "has_direction": False}
    return _frame(header)


@dataclass
class Node:
    """The result of expanding one branch: the ridden point and what the ride did."""

    fingerprint: Fingerprint
    theta: Tensor
    eigenvalue: float | None
    """Eigenvalue of the ridge at the start of the ride (``None`` for the root)."""
    eigenvalue_end: float | None
    """Eigenvalue of the followed eigenvector where the ride ended."""
    loss_start: float
    loss: float
    """Loss at the end of the ride (after polishing, for polished leaves)."""
    steps: int
    """Ride steps, plus the gradient steps of the polish for polished leaves."""
    end_reason: str
    """Why the ride ended: ``root``, ``convex``, ``overlap``, ``no_progress``, ``max_steps``, or
    ``diverged`` (``step_rule="fixed"`` only)."""
    losses: list[float]
    """Loss after every accepted ride step, starting with the branch point's."""
    metrics: dict[str, Any]
    """The problem's metrics at ``theta``; a polished leaf adds those of the point its ride
    ended at, before the polish, each scalar one as ``ride_<name>`` (``core.expand``)."""
    spectrum: list[float]
    """The lowest eigenvalues at the end point (what GetRidges saw)."""
    n_children: int
    is_leaf: bool
    is_solution: bool
    leaf_reason: str | None = None
    """For leaves: ``no_ridges`` (locally convex), ``max_depth``, ``stalled``, ``diverged``
    (a polish or the end point left the finite numbers: never a solution), or ``error`` (its
    expansion raised on every attempt; the error is in ``metrics``)."""
    solution_key: str | None = None
    crossings: int = 0
    """Steps where the followed eigenvector changed rank in the spectrum."""

    @property
    def depth(self) -> int:
        """Number of choices on the path from the root."""
        return len(self.fingerprint)

    @property
    def key(self) -> str:
        """Text form of the fingerprint, unique within a job."""
        return fingerprint_key(self.fingerprint)
