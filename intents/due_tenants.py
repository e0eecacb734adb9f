"""Which tenants have due work, as one dispatcher knows it, in round-robin order.

The claim visits only these tenants, so its cost follows the work that is due, never
the number of tenants: a tenant with nothing due costs nothing per batch.

The set is refreshed from the database in two ways (``refresh``):

* **recent**, before a claim (at most every ``RECENT_LOOK_MIN_S`` while the set still has
  tenants to visit): tenants with a pending intent whose due time fell in
  the last ``RECENT_MARGIN`` plus the time since the previous look. A range over
  ``intent_status_due_idx`` (status, next_attempt_at, tenant) that reads only pending
  intents come due lately, so its cost follows the due rate, not the backlog. The
  margin covers a transaction that stamped ``next_attempt_at`` before our last look but
  committed after it, and clock skew between web machines and the database.
* **full**, every ``FULL_REFRESH_S``: every tenant with any due intent. Reads every due
  intent's index entry once (O(due backlog), not O(tenants)); it catches what the
  recent look cannot see: an intent whose due time was older than the margin when it
  became visible (a lock held that long, a rolled-back claim).

A tenant leaves the set when a claim finds nothing more due for it, and comes back
through a refresh. So an intent is claimed at most ``FULL_REFRESH_S`` late in the worst
case, and within one claim of falling due normally.

``heavy`` tenants (more than ``HEAVY_ROWS`` due at the last count) are claimed with one
bounded seek each; the others together with one ranked query (``dispatch.claim_from``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

from .selectors import tenants_with_due_work

RECENT_MARGIN = dt.timedelta(seconds=2)
# While the set still has tenants to visit, the recent look runs at most this often: a
# burst falling due at once (a backlog released, an outage ended) stays in its range for
# the whole margin, and reading it before every claim would cost more than the claim.
RECENT_LOOK_MIN_S = 0.2
FULL_REFRESH_S = 5.0
# Above this many due intents, one index seek per claim (bounded by its share) costs
# less than reading the tenant's whole due backlog inside the ranked query.
HEAVY_ROWS = 200


class DueTenants:
    def __init__(self, tenant_ids: Iterable[int] = (), *, refreshing: bool = True) -> None:
        # Insertion order is the rotation: visit from the front, visited go to the back.
        self._order: dict[int, None] = dict.fromkeys(tenant_ids)
        self._heavy: set[int] = set()
        self.refreshing = refreshing
        self._seen_until: dt.datetime | None = None
        self._full_at = -1e9  # time.monotonic() of the last full refresh
        self._looked_at = -1e9  # time.monotonic() of the last look of either kind

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, tenant_id: object) -> bool:
        return tenant_id in self._order

    def refresh(self, now: dt.datetime) -> None:
        """Add the tenants that have work due at ``now`` (see the module notes)."""
        if not self.refreshing:
            return
        clock = time.monotonic()
        if clock - self._full_at >= FULL_REFRESH_S or self._seen_until is None:
            since = None
            self._full_at = clock
        elif self._order and clock - self._looked_at < RECENT_LOOK_MIN_S:
            return  # work is known; the look comes again soon (its range starts where it left)
        else:
            since = min(self._seen_until, now) - RECENT_MARGIN
        self._looked_at = clock
        found = tenants_with_due_work(now=now, since=since)
        if since is None:  # the exact set: a tenant no longer due (or deactivated) leaves
            exact = set(found)
            for tenant_id in [t for t in self._order if t not in exact]:
                self.visited(tenant_id, more=False)
        for tenant_id in found:
            self._order.setdefault(tenant_id, None)
        self._seen_until = now

    def next_up(self, count: int) -> list[int]:
        """The next ``count`` tenants in rotation (fewer when fewer have work)."""
        out: list[int] = []
        for tenant_id in self._order:
            if len(out) >= count:
                break
            out.append(tenant_id)
        return out

    def is_heavy(self, tenant_id: int) -> bool:
        return tenant_id in self._heavy

    def visited(self, tenant_id: int, *, more: bool, due_count: int | None = None) -> None:
        """After a claim: back of the rotation if work is left, out of the set if not."""
        self._order.pop(tenant_id, None)
        if not more:
            self._heavy.discard(tenant_id)
            return
        self._order[tenant_id] = None
        if due_count is not None:
            if due_count > HEAVY_ROWS:
                self._heavy.add(tenant_id)
            else:
                self._heavy.discard(tenant_id)
