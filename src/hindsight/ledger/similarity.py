"""Fuzzy similarity between failures: TF-IDF over fingerprint tokens, cosine ranked.

The index lives in memory next to the store, is built once from the failures'
token strings and then grows incrementally as new failures arrive, so a lookup
is one sparse matrix-vector product, however many failures the store holds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from hindsight.store import Store

__all__ = ["FailureIndex", "Match"]


@dataclass(frozen=True)
class Match:
    """A failure id, its fingerprint and its cosine similarity to the query."""

    failure_id: str
    fingerprint: str
    score: float


class FailureIndex:
    """An incrementally refreshed TF-IDF index of every failure in a store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._ids: list[str] = []
        self._fps: list[str] = []
        self._seen: set[str] = set()
        self._rows: list[sparse.csr_matrix] = []
        self._matrix: sparse.csr_matrix | None = None
        self._df = np.zeros(0, dtype=np.float64)
        self._since: float | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def refresh(self) -> int:
        """Add failures recorded since the last refresh; returns how many were added."""
        with self._lock:
            # Re-read a second of overlap: timestamps from other processes can tie.
            since = None if self._since is None else self._since - 1.0
            rows = [r for r in self._store.failure_signatures(since) if r[0] not in self._seen]
            if not rows:
                return 0
            block = self._encode([r[3] for r in rows], grow=True)
            self._rows.append(block)
            self._matrix = None
            for fid, fp, _cat, _tok, created in rows:
                self._ids.append(fid)
                self._fps.append(fp)
                self._seen.add(fid)
                if self._since is None or created > self._since:
                    self._since = created
            self._df = np.concatenate(
                [self._df, np.zeros(len(self._vocab) - len(self._df))]
            ) + np.bincount(block.indices, minlength=len(self._vocab))
            return len(rows)

    def query(self, tokens: str, *, k: int = 20, exclude: Sequence[str] = ()) -> list[Match]:
        """The ``k`` failures most similar to a token string, best first."""
        self.refresh()
        with self._lock:
            if not self._ids:
                return []
            matrix = self._weighted()
            q = self._encode([tokens], grow=False)
            if q.nnz == 0:
                return []
            q = q.multiply(self._idf()[: q.shape[1]]).tocsr()
            norm = float(np.sqrt(q.multiply(q).sum()))
            scores = (matrix @ q.T).toarray().ravel() / norm
            excluded = set(exclude)
            want = min(len(scores), k + len(excluded))
            top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            out = []
            for i in top:
                if self._ids[i] in excluded or scores[i] <= 0:
                    continue
                out.append(Match(self._ids[i], self._fps[i], float(scores[i])))
                if len(out) == k:
                    break
            return out

    def _encode(self, token_strings: Sequence[str], *, grow: bool) -> sparse.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        for s in token_strings:
            for tok in s.split():
                col = self._vocab.get(tok)
                if col is None:
                    if not grow:
                        continue
                    col = self._vocab[tok] = len(self._vocab)
                indices.append(col)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        m = sparse.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(token_strings), max(len(self._vocab), 1)),
        )
        m.sum_duplicates()
        # Presence, not counts: a repeated word in a message should not dominate.
        m.data[:] = 1.0
        return m

    def _idf(self) -> np.ndarray:
        n = max(len(self._ids), 1)
        return np.log((1.0 + n) / (1.0 + self._df)) + 1.0

    def _weighted(self) -> sparse.csr_matrix:
        if self._matrix is None:
            width = len(self._vocab)
            blocks = [
                sparse.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width))
                for b in self._rows
            ]
            raw = sparse.vstack(blocks, format="csr")
            weighted = raw.multiply(self._idf()).tocsr()
            norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            self._matrix = sparse.diags(1.0 / norms) @ weighted
            self._rows = [raw]
        return self._matrix
