"""The store interface: what the importer, the runner and the log commands need, backend-free.

The interface is small on purpose so a server database can implement it next to SQLite (see
:mod:`markstation.queue.sqlite`). Every state change is one transaction that also appends its
journal record, and a backend must guard the transition itself (not only the Python above it), so
a code cannot reach ``marking`` twice even if the caller is wrong.

The rules every backend shares (which fields may change, what the journal record of a transition
holds, how a refusal reads, what a crash recovery records) live here once; a backend implements
the storage primitives marked abstract, among them :meth:`Store._apply`, one guarded change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from markstation.errors import BatchError
from markstation.i18n import _
from markstation.queue.journal import ChainHead, Record, StoredCheckpoint
from markstation.queue.models import Actor, Item, ItemChange, NewItem
from markstation.queue.replay import RECOVERED_REASON as _REPLAY_RECOVERED_REASON
from markstation.queue.replay import check_items, replay
from markstation.queue.states import State, state_label

#: the reason an item left in ``marking`` by a dead runner gets, on the item and in the journal
#: (defined with the replay, which must give a ``recovery`` record the same reason)
RECOVERED_REASON = _REPLAY_RECOVERED_REASON


@dataclass(frozen=True)
class OperatorRow:
    """An operator as stored; the rules (PIN hashing, lockout, roles) are in
    :mod:`markstation.queue.operators`, which is the only code that should call the operator
    methods of :class:`Store`. Names are unique ignoring case, and looked up ignoring case."""

    name: str
    role: str
    pin_hash: str = field(repr=False)  # "$scrypt$n=…,r=…,p=…$salt$hash" (base64), never a PIN
    disabled: bool
    failed_attempts: int
    locked_until: str | None  # ISO UTC


#: what :meth:`Store.insert_operator` did
OperatorInsert = Literal["added", "name-taken", "first-role"]


class Store(ABC):
    """Batches, items and the journal of one campaign."""

    #: codes this object moved from marking to interrupted (on open or when becoming the runner)
    recovered: list[str]
    #: opened read-only (an auditor's copy): reads work, every write raises StoreReadOnly
    readonly: bool = False

    @staticmethod
    def journaled_payload(change: ItemChange) -> dict[str, Any]:
        """The record payload of ``change`` with what the change sets, so the journal proves the
        row exactly (:mod:`markstation.queue.replay`): ``set`` (fields written) and
        ``count_attempt``. Every backend journals this, not ``change.payload`` alone."""
        return {
            **change.payload,
            "set": dict(change.updates),
            "count_attempt": change.count_attempt,
        }

    def check_items_against_journal(self) -> int:
        """Every item row against what the journal proves (:mod:`markstation.queue.replay`).

        Raises JournalError naming the first item whose row (state, serial, code, attempts, …)
        differs, or a row the journal does not know, or a journaled item without a row. Returns
        the number of items checked. The hash chain itself is checked by ``journal.verify``.
        """
        return check_items(self.items(), replay(self.records()))

    # --- items -------------------------------------------------------------------------------

    @abstractmethod
    def import_batch(
        self, *, file: str, sha256: str, items: Sequence[NewItem], actor: Actor
    ) -> int:
        """Store all items and journal ``batch-imported``, in one transaction; return the batch id.

        Raises BatchError (nothing stored) when a code is already in the store.
        """

    @abstractmethod
    def find_codes(self, codes: Iterable[str]) -> dict[str, Item]:
        """Those of ``codes`` already in the store (any state: a code is never reused)."""

    @abstractmethod
    def find_firearms(self) -> dict[tuple[str, str], Item]:
        """Every stored item not voided, by :func:`~markstation.queue.models.firearm_key`."""

    @abstractmethod
    def item(self, code: str) -> Item | None: ...

    @abstractmethod
    def items(self, states: Iterable[State] | None = None) -> list[Item]:
        """Items in import order, optionally only those in ``states``."""

    def counts(self) -> dict[State, int]:
        """Items per state (every state present); a backend may count in the database."""
        result = {s: 0 for s in State}
        for it in self.items():
            result[it.state] += 1
        return result

    def transition(
        self,
        code: str,
        allowed_from: Iterable[State],
        to: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any] | None = None,
        count_attempt: bool = False,
    ) -> Item:
        """Move one item from one of ``allowed_from`` to ``to`` and journal it, atomically.

        Raises BatchError (nothing changed) when the item is unknown or in another state.
        """
        change = ItemChange(
            code,
            tuple(allowed_from),
            to,
            record_type,
            actor,
            {"code": code, "to": to.value, **payload},
            updates or {},
            count_attempt,
        )
        return self._apply_or_refuse(change)

    def annotate(
        self,
        code: str,
        in_state: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any],
    ) -> Item:
        """Change item fields without changing its state (e.g. the inspection result), journaled."""
        change = ItemChange(
            code, (in_state,), None, record_type, actor, {"code": code, **payload}, updates
        )
        return self._apply_or_refuse(change)

    @abstractmethod
    def _apply(self, change: ItemChange) -> Item | None:
        """Apply ``change`` and append its record in one transaction; return the changed item.

        Return None, with nothing changed, when the item is missing or not in
        ``change.allowed_from``; raise BatchError when the backend's own transition guard
        refuses the pair.
        """

    def _apply_or_refuse(self, change: ItemChange) -> Item:
        item = self._apply(change)
        if item is None:
            raise self._refusal(change)
        return item

    def _refusal(self, change: ItemChange) -> BatchError:
        current = self.item(change.code)
        if current is None:
            return BatchError(
                _("no item with code '{code}' in {store}").format(
                    code=change.code, store=self.location
                )
            )
        wanted = _(" or ").join(state_label(s) for s in change.allowed_from)
        to = state_label(change.to or change.allowed_from[0])
        return BatchError(
            _("item '{code}' is {state}, not {wanted}: cannot make it {to}").format(
                code=change.code, state=state_label(current.state), wanted=wanted, to=to
            )
        )

    # --- journal -----------------------------------------------------------------------------

    @abstractmethod
    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record: ...

    @abstractmethod
    def records(self) -> Iterator[Record]:
        """Every journal record in seq order (JournalError for a row that cannot even be read)."""

    @abstractmethod
    def head(self) -> ChainHead:
        """Number of records and the Merkle root over them."""

    # --- Merkle tree and checkpoints (see markstation.queue.journal) ---------------------------

    @abstractmethod
    def tree_node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree (level, index); JournalError when it is not stored."""

    @abstractmethod
    def tree_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored tree node as (level, index, hash), by level then index."""

    def root(self, size: int) -> bytes:
        """Merkle root of the first ``size`` records, from the stored nodes."""
        from markstation.queue.merkle import root_hash

        return root_hash(self.tree_node, size)

    @abstractmethod
    def add_checkpoint(self, text: str, *, reason: str) -> StoredCheckpoint:
        """Keep a checkpoint note (append-only)."""

    @abstractmethod
    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, oldest first."""

    # --- operators (see markstation.queue.operators) -----------------------------------------------

    @abstractmethod
    def operator_rows(self) -> list[OperatorRow]:
        """Every operator (disabled ones too), in the order they were added."""

    @abstractmethod
    def operator_row(self, name: str) -> OperatorRow | None:
        """The operator of that name, ignoring case; None when there is none."""

    @abstractmethod
    def insert_operator(
        self,
        row: OperatorRow,
        *,
        first_role: str,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
    ) -> OperatorInsert:
        """Store ``row`` and append its record in one transaction.

        Nothing is stored when the name is taken (ignoring case) -> ``"name-taken"``, or when the
        store has no operator yet and ``row.role`` is not ``first_role`` -> ``"first-role"``.
        """

    @abstractmethod
    def update_operator(
        self,
        expected: OperatorRow,
        new: OperatorRow,
        *,
        actor: Actor,
        records: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> OperatorRow | None:
        """Replace ``expected`` by ``new`` (same name) and append ``records`` (type, payload), in
        one transaction, only if the stored row still equals ``expected``; else change nothing and
        return None (the caller reads the row again: two sign-ins raced)."""

    # --- runner exclusivity and crash recovery ----------------------------------------------------

    @abstractmethod
    def acquire_runner(self, actor: Actor) -> list[str]:
        """Become the one runner of this store (StoreError if another live runner is).

        Returns the codes recovered on the way (left in marking by a runner that died).
        """

    @abstractmethod
    def release_runner(self) -> None: ...

    @abstractmethod
    def runner_info(self) -> dict[str, Any] | None:
        """pid/host/operator/since of the live runner, or None."""

    def reserve(self, code: str) -> bool:
        """Hold ``code`` for this runner while it works the item, so that other stations on a
        shared (server) store pass it by; False when another station holds it or it is no longer
        runnable. A hint only: the claim's guarded transition is what makes a mark happen once.
        A single-runner store (SQLite) has nobody to keep out: True."""
        return True

    def unreserve(self, code: str) -> None:
        """Let go of what :meth:`reserve` took (nothing on a single-runner store)."""
        del code  # nothing was held

    @abstractmethod
    def recover(self, actor: Actor) -> list[str]:
        """Items left in ``marking`` with no live runner -> ``interrupted`` (journaled); their codes."""

    @staticmethod
    def recovery_change(item: Item, actor: Actor) -> ItemChange:
        """What recovering one item left in ``marking`` changes and records (the same on every backend)."""
        return ItemChange(
            item.code,
            (State.MARKING,),
            State.INTERRUPTED,
            "recovery",
            actor,
            {
                "code": item.code,
                "to": State.INTERRUPTED.value,
                "attempt": item.attempts,
                "job_sha256": item.job_sha256,
                "reason": "found in marking with no live runner holding the store lock",
            },
            {"reason": RECOVERED_REASON},
        )

    # --- lifetime ------------------------------------------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store lives, for messages (a file path, or a URL without credentials)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
