"""Branch byte encoding, child seeds and fingerprint keys."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch

from ridgerider.core.branch import (
    Branch,
    child_seed,
    compact_bytes,
    fingerprint_key,
    tensor_from_bytes,
    tensor_to_bytes,
)


def assert_same(a: Branch, b: Branch) -> None:
    assert a.theta.dtype == b.theta.dtype
    assert torch.equal(a.theta, b.theta)
    if a.direction is None:
        assert b.direction is None
    else:
        assert b.direction is not None
        assert b.direction.dtype == a.direction.dtype
        assert torch.equal(a.direction, b.direction)
    assert a.eigenvalue == b.eigenvalue
    assert a.fingerprint == b.fingerprint
    assert a.seed == b.seed
    assert a.loss == b.loss


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_root_branch_round_trip(dtype):
    theta = torch.randn(17, generator=torch.Generator().manual_seed(0)).to(dtype)
    b = Branch(theta, None, None, (), seed=2**63 - 1, loss=None)
    back = Branch.from_bytes(b.to_bytes())
    assert_same(b, back)
    assert back.depth == 0
    assert back.key == ""


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ridge_branch_round_trip(dtype):
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(33, generator=g, dtype=torch.float64).to(dtype)
    e = torch.randn(33, generator=g, dtype=torch.float64).to(dtype)
    theta[0] = 1e-300 if dtype == torch.float64 else 1e-30  # tiny values survive exactly
    b = Branch(
        theta,
        e,
        eigenvalue=-0.012676190476190475,
        fingerprint=((0, 1), (3, -1), (12, 1)),
        seed=123456789,
        loss=-0.1 / 3,
    )
    data = b.to_bytes()
    assert data[:4] == b"RRB2"
    back = Branch.from_bytes(data)
    assert_same(b, back)
    assert back.depth == 3
    assert back.key == "0+.3-.12+"
    assert back.to_bytes() == data  # encoding is canonical


def test_encoding_is_little_endian_raw_data():
    theta = torch.tensor([1.0, -2.5], dtype=torch.float64)
    data = Branch(theta, None, None, (), 0).to_bytes()
    code, flags, n, _, seed, _, _, depth = struct.unpack("<BBIdqdqI", data[4:46])
    assert (code, n, seed, depth) == (0, 2, 0, 0)  # float64, 2 values, the root
    assert flags == 1  # θ only: no ridge, eigenvalue, loss or parent seed
    assert data[46:] == struct.pack("<2d", 1.0, -2.5)


def test_binary_header_layout_of_a_child():
    """Fixed fields, then one little-endian u32 per choice: index << 1 | (sign < 0)."""
    child = Branch(torch.zeros(4), torch.ones(4), -0.5, ((0, 1), (3, -1)), 7, -0.0, 11)
    data = child.to_bytes(theta=False)
    code, flags, n, eig, seed, loss, parent, depth = struct.unpack("<BBIdqdqI", data[4:46])
    assert (code, n, eig, seed, parent, depth) == (1, 4, -0.5, 7, 11, 2)
    assert flags == 2 | 4 | 8 | 16  # ridge, eigenvalue, loss and parent seed; no θ
    assert math.copysign(1.0, loss) == -1.0  # -0.0 keeps its sign
    assert struct.unpack("<2I", data[46:54]) == (0, 7)
    assert len(data) == 54 + 4 * 4
    back = Branch.from_bytes(data, tensor_to_bytes(child.theta))
    assert_same(child, back)
    assert math.copysign(1.0, back.loss) == -1.0


def test_a_header_only_record_is_small():
    fp = tuple((i, 1 if i % 2 else -1) for i in range(12))
    child = Branch(torch.zeros(70, dtype=torch.float64), None, -0.25, fp, 2**62, 1.5, 2**61)
    assert len(child.to_bytes(theta=False, direction=False)) == 46 + 4 * 12


def test_numbers_beyond_the_binary_fields_keep_the_json_header():
    big = Branch(torch.ones(2, dtype=torch.float64), None, None, (), 2**64 + 3, None)
    data = big.to_bytes()
    assert data[:4] == b"RRB1"
    assert Branch.from_bytes(data).seed == 2**64 + 3
    wide = Branch(torch.ones(2), torch.ones(2), -1.0, ((2**31, 1),), 1, 0.0, 0)
    assert wide.to_bytes()[:4] == b"RRB1"
    assert Branch.from_bytes(wide.to_bytes()).fingerprint == ((2**31, 1),)


@pytest.mark.parametrize("ridden", [True, False])
def test_first_format_records_decode_and_compact_to_the_same_branch(ridden):
    child = Branch(torch.ones(3, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64),
                   -1.0, ((2, -1), (0, 1)), 5, 0.25, 9)  # fmt: skip
    header = {**_good_header(), "fingerprint": [[2, -1], [0, 1]], "parent_seed": 9, "loss": 0.25}
    old = _frame(header, child.to_bytes()[-48:])
    assert_same(Branch.from_bytes(old), child)
    small = compact_bytes(old, ridden=ridden)
    assert small == compact_bytes(child.to_bytes(), ridden=ridden)
    assert small is not None and small[:4] == b"RRB2"


def test_tensor_bytes_round_trip():
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        t = torch.linspace(-3, 3, 11, dtype=dtype)
        back = tensor_from_bytes(tensor_to_bytes(t), name)
        assert back.dtype == dtype
        assert torch.equal(back, t)


def _frame(header: dict | list | bytes, body: bytes = b"") -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return b"RRB1" + struct.pack("<I", len(h)) + h + body


GOOD = Branch(torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), -1.0,
              ((0, 1),), 5, 0.5)  # fmt: skip


def _good_header() -> dict:
    """:data:`GOOD`'s header as the first format (``RRB1``) writes it."""
    return {"dtype": "float64", "n": 3, "has_direction": True, "eigenvalue": -1.0,
            "fingerprint": [[0, 1]], "seed": 5, "loss": 0.5}  # fmt: skip


def _binary(**fields: int) -> bytes:
    """:data:`GOOD` as ``RRB2`` with some fixed fields replaced."""
    values = {"code": 0, "flags": 15, "n": 3, "depth": 1} | fields
    fixed = struct.pack("<BBIdqdqI", values["code"], values["flags"], values["n"], -1.0, 5, 0.5,
                        0, values["depth"])  # fmt: skip
    return b"RRB2" + fixed + struct.pack("<I", 0) + b"\x00" * 48


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RRB",
        b"RRB1",
        b"RRB1\x01\x00",
        b"XXXX" + GOOD.to_bytes()[4:],
        GOOD.to_bytes()[:-1],  # truncated body
        GOOD.to_bytes() + b"\x00",  # trailing garbage
        GOOD.to_bytes()[:20],  # truncated header
        _frame(b"{not json"),
        _frame(b"\xff\xfe\x00"),  # not UTF-8
        _frame({**_good_header(), "dtype": "int64"}, b"\x00" * 48),
        _frame({**_good_header(), "dtype": "float16"}, b"\x00" * 12),
        _frame({**_good_header(), "has_direction": False}, b"\x00" * 48),
        _frame({**_good_header(), "n": 4}, b"\x00" * 48),
        _frame({**_good_header(), "n": -1}, b""),
        _frame({**_good_header(), "fingerprint": [[1]]}, b"\x00" * 48),
        _binary(code=2),  # no such dtype
        _binary(flags=15 | 32),  # unknown flag
        _binary(depth=1000),  # more choices than bytes
        _binary(n=4),  # body of the wrong size
        _binary(flags=13),  # no ridge, but a ridge's bytes
        b"RRB2" + b"\x00" * 10,  # truncated fixed fields
    ],
    ids=lambda d: repr(d[:12]),
)
def test_malformed_bytes_raise_value_error(data):
    with pytest.raises(ValueError):
        Branch.from_bytes(data)


@pytest.mark.parametrize(
    "header",
    [
        {},
        [1, 2],
        {k: v for k, v in _good_header().items() if k != "seed"},
        {**_good_header(), "seed": None},
        {**_good_header(), "fingerprint": 7},
    ],
    ids=["empty", "list", "no-seed", "seed-null", "fingerprint-int"],
)
def test_structurally_wrong_header_raises_value_error(header):
    with pytest.raises(ValueError):
        Branch.from_bytes(_frame(header, b"\x00" * 48))


def test_child_seed_is_deterministic_and_distinct():
    assert child_seed(7, (0, 1)) == child_seed(7, (0, 1))
    choices = [(i, s) for i in range(20) for s in (1, -1)]
    seeds = {child_seed(7, c) for c in choices}
    assert len(seeds) == len(choices)
    assert child_seed(7, (0, 1)) != child_seed(8, (0, 1))
    # Not a simple function of concatenated text: (1, 11) vs (11, 1) and sign differ.
    assert child_seed(1, (1, 1)) != child_seed(1, (1, -1))
    assert child_seed(11, (1, 1)) != child_seed(1, (11, 1))
    for s in seeds:
        assert 0 <= s < 2**63
    # A pure function: a fixed reference value guards against accidental changes that would
    # make stored jobs replay differently.
    assert child_seed(0, (0, 1)) == 7303296070275808347
    assert child_seed(42, (3, -1)) == 3633026452824799452


def test_child_seed_usable_by_torch():
    s = child_seed(2**63 - 1, (5, -1))
    g = torch.Generator().manual_seed(s)
    a = torch.randn(3, generator=g)
    b = torch.randn(3, generator=torch.Generator().manual_seed(s))
    assert torch.equal(a, b)


def test_fingerprint_key():
    assert fingerprint_key(()) == ""
    assert fingerprint_key(((0, 1),)) == "0+"
    assert fingerprint_key(((0, 1), (3, -1))) == "0+.3-"
    assert fingerprint_key(((0, 1), (3, -1))) != fingerprint_key(((0, -1), (3, 1)))


def _old_record(branch: Branch) -> bytes:
    """A record as written before children left θ out (both tensors, no parent seed)."""
    header = {
        "dtype": "float64",
        "n": branch.theta.numel(),
        "has_direction": True,
        "eigenvalue": branch.eigenvalue,
        "fingerprint": [list(c) for c in branch.fingerprint],
        "seed": branch.seed,
        "loss": branch.loss,
    }
    h = json.dumps(header).encode()
    assert branch.direction is not None
    body = tensor_to_bytes(branch.theta) + tensor_to_bytes(branch.direction)
    return b"RRB1" + struct.pack("<I", len(h)) + h + body


def test_a_child_stored_without_theta_takes_its_parents():
    theta = torch.randn(6, dtype=torch.float64)
    child = Branch(theta, torch.randn(6, dtype=torch.float64), -0.5, ((1, -1),), 9, 0.25, 3)
    data = child.to_bytes(theta=False)
    assert len(data) < len(child.to_bytes()) - 6 * 8 + 20  # θ's bytes are gone
    assert_same(child, Branch.from_bytes(data, tensor_to_bytes(theta)))
    assert Branch.from_bytes(data, tensor_to_bytes(theta)).parent_seed == 3
    with pytest.raises(ValueError, match="without θ"):
        Branch.from_bytes(data)
    with pytest.raises(ValueError, match="without θ"):
        Branch.from_bytes(data, tensor_to_bytes(theta[:5]))


def test_old_records_decode_and_are_not_compacted_unridden():
    from ridgerider.core.branch import compact_bytes

    child = Branch(torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64),
                   -1.0, ((0, 1),), 5, 0.0)  # fmt: skip
    old = _old_record(child)
    decoded = Branch.from_bytes(old, tensor_to_bytes(child.theta + 1))  # its own θ wins
    assert_same(child, decoded) and decoded.parent_seed is None
    assert compact_bytes(old, ridden=False) is None  # no parent seed: its ridge is kept
    ridden = compact_bytes(old, ridden=True)
    assert ridden is not None and Branch.from_bytes(ridden, tensor_to_bytes(child.theta)).compacted


def test_compacted_record_is_the_header():
    from ridgerider.core.branch import compact_bytes

    theta = torch.randn(5, dtype=torch.float64)
    child = Branch(theta, torch.randn(5, dtype=torch.float64), -0.1, ((2, 1),), 11, 1.5, 4)
    small = compact_bytes(child.to_bytes(theta=False), ridden=False)
    assert small is not None and compact_bytes(small, ridden=False) is None
    back = Branch.from_bytes(small, tensor_to_bytes(theta))
    assert back.compacted and back.direction is None and back.parent_seed == 4
    assert (back.eigenvalue, back.seed, back.loss, back.fingerprint) == (-0.1, 11, 1.5, ((2, 1),))
    root = Branch(theta, None, None, (), 1, 0.0)
    assert compact_bytes(root.to_bytes(), ridden=True) is None and not root.compacted
