"""The frontier's hot statements, built once as Core constructs and compiled once per dialect.

A claim or a completion runs a handful of statements thousands of times a second; compiling,
cache-keying and type-processing each execution would cost more than the database work. Here
every statement is compiled once per dialect and executed on the driver's cursor inside the
session's transaction: parameters are passed raw (JSON already encoded, timestamps taken by the
database), results come back raw (:func:`json_value` decodes JSON columns where a driver returns
text).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Float,
    LargeBinary,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.compiled import Compiled, Result, json_value
from ridgerider.services.frontier.speculation import UNPLANNED
from ridgerider.services.storage.records import NODE_RESULT_FIELDS, NODE_RESULT_TYPES
from ridgerider.services.storage.session import db_now
from ridgerider.services.storage.tables import JOBS, NODES, SOLUTIONS

__all__ = ["RESULT_COLS", "Compiled", "Result", "json_value", "statements"]
# (Compiled, Result and json_value live in .compiled; importing them from here still works.)

n, j = NODES.c, JOBS.c
RESULT_COLS = (*NODE_RESULT_FIELDS, "theta_data", "theta_ref")
"""What a completion writes: the node's results and its end parameters (inline or a ref).

It also writes ``v_branch``, the header its branch shrinks to (``codec.ridden_branch``), if
any; a branch stored as an artifact then loses its ``branch_ref`` (the completion deletes the
artifact if no other row uses it)."""
JSON_COLS = tuple(c for c, t in NODE_RESULT_TYPES.items() if t is dict)
"""Result columns a completion passes as JSON text (``metrics``, ``trace``)."""
CHILD_COLS = ("job_id", "parent_id", "key", "depth", "child_index", "branch_loss", "branch_data",
              "branch_ref", "spec")  # fmt: skip


def _constant(value: StrEnum) -> Any:
    """A status written into the SQL as a constant (``'waiting'``), not bound."""
    return literal_column(f"'{value.value}'")


def _is(col: Any, value: StrEnum) -> Any:
    """``col = 'value'`` with the value written into the SQL, not bound.

    A constant lets the planner match the partial indexes (``WHERE status = 'waiting'``) in
    every plan, prepared or not; a bound parameter would hide it.
    """
    return col == _constant(value)


def _least(pg: bool, a: Any, b: Any) -> Any:
    return (func.least if pg else func.min)(a, b)


def _room(pg: bool, jobs: Any) -> Any:
    """Rides a job of ``jobs`` (the jobs table or an alias) may have ahead.

    The smaller of ``cap`` and the ranks its node budget still admits. The budget is written
    out: a JSON path bound in the compiled statements would go unprocessed.
    """
    if pg:
        budget = literal_column(f"({jobs.name}.settings ->> 'max_nodes')::int8")
    else:
        budget = literal_column(f"json_extract({jobs.name}.settings, '$.max_nodes')")
    return _least(pg, bindparam("cap"), budget - jobs.c.admitted)


def _claim(by: str, pg: bool, ahead: bool = False, rest: bool = False) -> Executable:
    """Lease up to ``k`` admitted waiting rows: of one job, of any job, or among given ids.

    ``ahead``: rows not ranked yet instead, by speculation key (:mod:`.speculation`), of jobs
    that still admit and have fewer rides ahead (leased or done, unranked) than ``cap`` and
    than the ranks their node budget still admits (more could never all join the tree: near
    the budget's end a ride ahead is mostly waste, and a lone worker has no one to lend it).
    ``rest``: up to ``k`` less the rows leased with token ``first`` (an admitted claim earlier
    in the same transaction), so both claims go to the server in one round trip.
    """
    where = [_is(n.status, NodeStatus.WAITING), _is(j.status, JobStatus.RUNNING)]
    where.append(j.accelerator == bindparam("acc"))
    if ahead:
        m = NODES.alias("ahead")
        # One job's claim counts its rides once (an uncorrelated subquery: PostgreSQL's
        # InitPlan); correlated, it was counted again for every candidate row, and at 64
        # workers each claim passed over dozens of locked candidates (0.5-0.8 s a claim).
        of = bindparam("job") if by == "job" else n.job_id
        rides = select(func.count()).select_from(m).where(m.c.job_id == of)
        rides = rides.where(text("ahead.rank IS NULL AND ahead.status IN ('leased', 'done')"))
        where += [n.spec < literal(UNPLANNED, LargeBinary), n.rank.is_(None)]
        where.append(j.stopped_by.is_(None))
        if by != "job":  # one job's claim bounds its LIMIT by the room instead (below)
            where.append(rides.scalar_subquery() < _room(pg, JOBS))
    else:
        where.append(n.rank < j.admitted)
    if by == "job":
        where.append(n.job_id == bindparam("job"))
    elif by == "ids" and pg:
        where.append(n.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
    elif by == "ids":
        ids = select(literal_column("value")).select_from(func.json_each(bindparam("ids")))
        where.append(n.id.in_(ids))
    limit: Any = bindparam("k")
    if rest:
        mine = NODES.alias("mine")
        first = (
            select(func.count())
            .select_from(mine)
            .where(
                mine.c.lease_token == bindparam("first"),
                text("mine.status = 'leased'"),
            )
        )
        limit = (func.greatest if pg else func.max)(0, limit - first.scalar_subquery())
    if ahead and by == "job":  # no more rows than the room left before this claim (0: none)
        b = JOBS.alias("budget")
        room = select(_room(pg, b)).where(b.c.id == bindparam("job")).scalar_subquery()
        limit = (func.greatest if pg else func.max)(
            0, _least(pg, limit, room - rides.scalar_subquery())
        )
    pick = (
        select(n.id)
        .join(JOBS, j.id == n.job_id)
        .where(*where)
        .order_by(n.job_id, n.spec if ahead else n.rank)
        .limit(limit)
        .with_for_update(of=NODES, skip_locked=True)
    )
    return _lease(n.id.in_(pick.scalar_subquery()))


def _lease(where: Any) -> Executable:
    job_ttl = select(j.lease_s).where(j.id == n.job_id).scalar_subquery()
    ttl = func.coalesce(bindparam("ttl", type_=Float), job_ttl)
    return (
        update(NODES)
        .where(where)
        .values(
            status=NodeStatus.LEASED,
            lease_owner=bindparam("worker"),
            lease_token=bindparam("token"),
            lease_expires=db_now() + ttl,
            attempts=n.attempts + 1,
        )
        .returning(
            n.id, n.job_id, n.rank, n.attempts, n.lease_expires, n.branch_data, n.branch_ref,
            _parent(n.theta_data, "parent_theta"), _parent(n.theta_ref, "parent_ref"),
        )
    )  # fmt: skip


def _parent(col: Any, label: str) -> Any:
    """A column of the row's parent (a child branch's θ is its parent's end θ).

    Written out: RETURNING renders its columns unqualified, which would make a Core
    subquery's ``parent.id = nodes.parent_id`` compare the parent with itself.
    """
    sql = f"(SELECT p.{col.name} FROM nodes AS p WHERE p.id = nodes.parent_id)"
    return literal_column(sql).label(label)


_RIDDEN = bindparam("v_branch", type_=LargeBinary)
"""What a ridden row keeps of its branch (``codec.ridden_branch``; ``None``: all of it)."""


def _complete() -> Executable:
    """Fenced: the lease is ours and live, the job still runs. Returns rank and prefix."""
    running = exists().where(j.id == n.job_id, _is(j.status, JobStatus.RUNNING))
    prefix = select(j.prefix).where(j.id == n.job_id).scalar_subquery()
    return (
        update(NODES)
        .where(
            n.id == bindparam("node"),
            _is(n.status, NodeStatus.LEASED),
            n.lease_token == bindparam("token"),
            n.lease_expires > db_now(),
            running,
        )
        .values(
            status=NodeStatus.DONE,
            lease_owner=None,
            lease_token=None,
            lease_expires=None,
            finished_at=func.now(),
            branch_data=func.coalesce(_RIDDEN, n.branch_data),
            branch_ref=case((_RIDDEN.is_(None), n.branch_ref), else_=None),
            **{c: bindparam(f"v_{c}") for c in RESULT_COLS},
        )
        .returning(n.rank, prefix.label("prefix"))
    )


def _insert(table: Any, cols: tuple[str, ...], keys: tuple[str, ...], pg: bool) -> Any:
    """Insert one row, skipping a conflict on ``keys``.

    Parameters are ``<column>_0``: a column's own name is reserved for the VALUES clause.
    """
    ins = postgresql.insert if pg else sqlite.insert
    fixed: dict[str, Any] = {"created_at": func.now()}
    if table is NODES:  # column defaults, written out (no per-execution default processing)
        fixed |= {"status": _constant(NodeStatus.WAITING), "attempts": literal_column("0")}
    values = {**{c: bindparam(f"{c}_0") for c in cols}, **fixed}
    return ins(table).values(values).on_conflict_do_nothing(index_elements=list(keys))


def _push_bfs() -> Executable:
    """FIFO ranks for the children of a run of parents, numbered server-side."""
    parent = NODES.alias("parent")
    numbered = (
        select(
            n.id.label("id"),
            (
                bindparam("first")
                - 1
                + func.row_number().over(order_by=(parent.c.rank, n.child_index))
            ).label("pos"),
        )
        .join(parent, parent.c.id == n.parent_id)
        .where(
            parent.c.job_id == bindparam("job"),
            parent.c.rank >= bindparam("start"),
            parent.c.rank < bindparam("stop"),
        )
        .subquery()
    )
    return (
        update(NODES).where(n.id == numbered.c.id).values(seq=numbered.c.pos, rank=numbered.c.pos)
    )


def _load(skip_locked: bool) -> Executable:
    return (
        select(
            j.seed,
            j.settings,
            j.pushed,
            j.ranked,
            j.prefix,
            j.prefix_steps,
            j.admitted,
            j.stopped_by,
            j.rng_state,
        )
        .where(j.id == bindparam("job"), _is(j.status, JobStatus.RUNNING))
        .with_for_update(key_share=True, skip_locked=skip_locked)
    )


_SAVE_COLS = ("pushed", "ranked", "prefix", "prefix_steps", "admitted", "stopped_by", "rng_state")
_BUILDERS: dict[str, Callable[[bool], Any]] = {
    "claim_job": lambda pg: _claim("job", pg),
    "claim_any": lambda pg: _claim("any", pg),
    "claim_ids": lambda pg: _claim("ids", pg),
    "ahead_job": lambda pg: _claim("job", pg, ahead=True),
    "ahead_any": lambda pg: _claim("any", pg, ahead=True),
    "ahead_job_rest": lambda pg: _claim("job", pg, ahead=True, rest=True),
    "complete": lambda pg: _complete(),
    "child": lambda pg: _insert(NODES, CHILD_COLS, ("job_id", "key"), pg),
    "solution": lambda pg: _insert(
        SOLUTIONS,
        ("job_id", "node_id", "key", "solution_key", "loss", "metrics"),
        ("job_id", "key"),
        pg,
    ),
    "prefix": lambda pg: select(j.prefix).where(j.id == bindparam("job")),
    "status_at": lambda pg: select(n.status).where(
        n.job_id == bindparam("job"), n.rank == bindparam("rank")
    ),
    "load": lambda pg: _load(False),
    "load_skip": lambda pg: _load(True),
    "save": lambda pg: (
        update(JOBS)
        .where(j.id == bindparam("job"))
        .values(updated_at=func.now(), **{c: bindparam(f"v_{c}") for c in _SAVE_COLS})
    ),
    "done_from": lambda pg: (
        select(n.rank, n.id, n.steps)
        .where(
            n.job_id == bindparam("job"),
            n.rank >= bindparam("start"),
            n.rank < bindparam("stop"),
            _is(n.status, NodeStatus.DONE),
        )
        .order_by(n.rank)
    ),
    "children_of": lambda pg: (
        select(n.id).where(n.parent_id == bindparam("parent")).order_by(n.child_index)
    ),
    "push_bfs": lambda pg: _push_bfs(),
    "set_order": lambda pg: (
        update(NODES)
        .where(n.id == bindparam("b_id"))
        .values(seq=bindparam("b_seq"), rank=bindparam("b_rank"), slot=bindparam("b_slot"))
    ),
    "clear_slot": lambda pg: update(NODES).where(n.id == bindparam("b_id")).values(slot=None),
    "stuck": lambda pg: (
        select(j.id)
        .join(NODES, (n.job_id == j.id) & (n.rank == j.prefix))
        .where(
            _is(j.status, JobStatus.RUNNING),
            j.prefix < j.admitted,
            _is(n.status, NodeStatus.DONE),
        )
    ),
    "waiting_range": lambda pg: (
        select(n.job_id, n.id, n.rank)
        .join(JOBS, j.id == n.job_id)
        .where(
            n.job_id == bindparam("job"),
            n.rank >= bindparam("start"),
            n.rank < bindparam("stop"),
            _is(n.status, NodeStatus.WAITING),
            _is(j.status, JobStatus.RUNNING),
            n.rank < j.admitted,
        )
    ),
}


class Statements:
    """The compiled hot statements of one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.pg = dialect.name == "postgresql"
        for name, build in _BUILDERS.items():
            setattr(self, name, Compiled(build(self.pg), dialect))

    child: Compiled
    """Insert one child branch (parameters ``<column>_0``), skipping a key the job already
    has; run with :meth:`Compiled.many` for a batch. One statement for every batch size: a
    multi-row ``INSERT`` compiled per number of rows cost ~0.1 ms a row to compile (27 ms for
    a claim's 270 children), nearly every batch a new size."""
    claim_job: Compiled
    claim_any: Compiled
    claim_ids: Compiled
    ahead_job: Compiled
    ahead_any: Compiled
    ahead_job_rest: Compiled
    complete: Compiled
    solution: Compiled
    prefix: Compiled
    status_at: Compiled
    load: Compiled
    load_skip: Compiled
    save: Compiled
    done_from: Compiled
    children_of: Compiled
    push_bfs: Compiled
    set_order: Compiled
    clear_slot: Compiled
    stuck: Compiled
    waiting_range: Compiled


@cache
def statements(dialect_name: str, dialect: Dialect) -> Statements:
    """The compiled statements for a dialect (built once per process)."""
    return Statements(dialect)
