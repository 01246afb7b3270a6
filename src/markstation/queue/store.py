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
from types import TracebackType
from typing import Any, Self

from markstation.errors import BatchError
from markstation.queue.journal import ChainHead, Record
from markstation.queue.models import Actor, Item, ItemChange, NewItem
from markstation.queue.states import State

#: the reason an item left in ``marking`` by a dead runner gets, on the item and in the journal
RECOVERED_REASON = "runner stopped while marking (crash, kill or power loss)"


class Store(ABC):
    """Batches, items and the journal of one campaign."""

    #: codes this object moved from marking to interrupted (on open or when becoming the runner)
    recovered: list[str]

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
            return BatchError(f"no item with code '{change.code}' in {self.location}")
        wanted = " or ".join(s.value for s in change.allowed_from)
        to = (change.to or change.allowed_from[0]).value
        return BatchError(
            f"item '{change.code}' is {current.state.value}, not {wanted}: cannot make it {to}"
        )

    # --- journal -----------------------------------------------------------------------------

    @abstractmethod
    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record: ...

    @abstractmethod
    def records(self) -> Iterator[Record]:
        """Every journal record in seq order (JournalError for a row that cannot even be read)."""

    @abstractmethod
    def head(self) -> ChainHead: ...

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
