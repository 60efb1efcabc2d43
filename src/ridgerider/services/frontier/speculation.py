"""Speculative claims: ride what a sequential order will most likely want next.

``dfs``, ``priority`` and ``random`` choose their next branch from the result of the last one,
so the sequencer admits one rank at a time (:mod:`.sequencer`). But ``core.expand`` is a pure
function of the branch: a branch may be ridden *before* its turn without changing anything.
When a worker finds no admitted branch, the database frontier leases a branch that is not
admitted yet (a *speculative* claim), chosen by a key that predicts the order. Its completion
is recorded like any other (the node, its children, its solution), but it joins the tree only
when the sequencer ranks and admits it: every reader already shows ranks below the job's
finished prefix only, and the sequencer finds the row done the moment it ranks it and moves
on at once. So the tree is exactly what the one-process loop admits, whatever was ridden ahead;
a mis-speculated ride costs work, never correctness.

The key (``nodes.spec``, bytes compared bytewise by both databases) is each order's own
expansion order over the branches known so far:

* ``dfs`` pops the first child first and finishes its subtree before the next sibling, i.e.
  it expands in *pre-order*, the lexicographic order of the path of choices from the root.
  The key is that path, so a speculative claim takes the next node of the pre-order among the
  known branches: with an unlimited budget every speculative ride of ``dfs`` is used, and only
  the rides past a node or step budget are wasted.
* ``priority`` pops the lowest branch-point loss first: the key is the loss (an
  order-preserving encoding of the float) and then the path. Children of the rank in flight
  are not known yet and usually come next (a ride descends), so the whole order is known only
  as far as the rows ridden ahead reach: after each sequencer round the planner
  (:mod:`.planner`) replays the pops that follow the rank in flight's subtree (rows ridden
  ahead push their children when popped) and keys those rows first.
* ``random`` draws from the open list with the job's seeded generator, so its next draws are
  fixed by the generator's state and the list's sizes: after each sequencer round the planner
  (:mod:`.planner`) replays them as far as they are known (children of rows ridden ahead are
  known, others predicted) and keys the drawn rows first. Only planned rows are ridden ahead:
  beyond the plan every open branch is equally likely at each draw, so a guess would mostly
  be wasted (measured: unplanned rides filled the cap with rows drawn much later). Their own
  key (the depth, then a hash of the seed) starts with ``0x02``, which claims skip.

Own keys start with ``0x01`` (``0x02`` for ``random``); a planned row's key is ``0x00``, its
place in the plan, then its own key, so planned rows are claimed first and a new plan
restores the old keys.
* ``bfs`` is not speculated: its ranks are known when a level is pushed and a whole level is
  admitted at once.

Where speculation cannot help: a ride can start only once its branch exists, i.e. once its
parent is ridden, so a job takes at least (longest root-to-leaf chain of the tree) × (ride
time); ``dfs`` on a tree deeper than the budget follows one chain and rides ahead only
siblings it may never reach. The outstanding speculation of a job (rides leased or done but
not ranked) is capped (``speculation``) and held to the ranks its node budget still admits (a
claim rides ahead only while there is room, and takes no more rows than the room left): the
waste at a budget's end is at most the smaller of the two (a 6-node job claimed 8 at a time
with a cap of 50: 3 rides past the budget, 14 without the budget's bound).
"""

from __future__ import annotations

import hashlib
import struct

from ridgerider.core.branch import Branch

__all__ = ["DEFAULT_SPECULATION", "OWN", "SPECULATED_ORDERS", "UNPLANNED", "spec_key"]

SPECULATED_ORDERS = ("dfs", "priority", "random")
"""The orders a speculative claim serves (``bfs`` admits whole levels without it)."""

OWN = b"\x01"
"""First byte of a branch's own key (a planned row's key starts lower: ``planner.PLANNED``)."""
UNPLANNED = b"\x02"
"""First byte of a ``random`` branch's own key: claimed ahead only once planned."""

DEFAULT_SPECULATION = 32
"""Rides a job may have leased or done ahead of its ranks (0: no speculation)."""


def _path(branch: Branch) -> bytes:
    """The choices from the root, in the order ``core.ridge.get_ridges`` lists children.

    Children are listed by eigen-index, ``+`` before ``-``: ``(index, sign)`` becomes two bytes
    of index and one byte of sign, so the bytes sort as the children do.
    """
    return b"".join(
        struct.pack(">HB", min(i, 0xFFFF), 0 if s > 0 else 1) for i, s in branch.fingerprint
    )


def _ordered_float(x: float | None) -> bytes:
    """Eight bytes that sort as the float does (``None`` and NaN last)."""
    if x is None or x != x:
        return b"\xff" * 8
    bits = struct.unpack(">Q", struct.pack(">d", x))[0]
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63
    return struct.pack(">Q", bits)


def spec_key(order: str, branch: Branch) -> bytes | None:
    """The speculation key of a branch in a job of ``order`` (``None``: never speculated)."""
    if order == "dfs":
        return OWN + _path(branch)
    if order == "priority":
        return OWN + _ordered_float(branch.loss) + _path(branch)
    if order == "random":
        digest = hashlib.sha256(str(branch.seed).encode()).digest()[:8]
        return UNPLANNED + struct.pack(">H", min(branch.depth, 0xFFFF)) + digest
    return None
