"""Fuzzy similarity between failures: TF-IDF over fingerprint tokens, cosine ranked.

The index lives in memory next to the store, is built once from the failures'
token strings and then grows incrementally as new failures arrive; a lookup reads
only the postings of the query's tokens and one cheap, indexed refresh query.
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
    """An incrementally refreshed TF-IDF index of every failure in a store.

    Token presence is kept as a binary matrix: the rows of the index's first build
    (and of later merges) column-major, so a query reads only the postings of its own
    tokens; failures added since sit in a small row-major tail, merged in once it
    grows past a fraction of the whole. IDF weights and row norms are derived from
    the binary matrix when the corpus changes, never by rebuilding it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._ids: list[str] = []
        self._fps: list[str] = []
        self._row_of: dict[str, int] = {}
        self._cursor: float | None = None
        self._main: sparse.csc_matrix | None = None
        self._tail_blocks: list[sparse.csr_matrix] = []
        self._tail: sparse.csr_matrix | None = None
        self._df = np.zeros(0, dtype=np.float64)
        self._norms: np.ndarray | None = None
        self._fp_code: dict[str, int] = {}
        self._codes: list[int] = []
        self._codes_arr: np.ndarray | None = None
        self._created: list[float] = []
        self._created_arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def refresh(self) -> int:
        """Add failures recorded since the last refresh; returns how many were added."""
        with self._lock:
            found, self._cursor = self._store.failure_signatures_after(self._cursor)
            return self._add_locked(found)

    def add(self, signatures: Sequence[tuple[str, str, str, str, float]]) -> int:
        """Add failures by their signatures (id, fingerprint, category, tokens, created_at).

        For failures written with an older ``created_at`` than the newest already indexed
        (records a client spooled during an outage), which a time-ordered refresh on
        PostgreSQL would not see. Ids already in the index are skipped.
        """
        with self._lock:
            return self._add_locked(list(signatures))

    def _add_locked(self, found: Sequence[tuple[str, str, str, str, float]]) -> int:
        rows = [r for r in found if r[0] not in self._row_of]
        if not rows:
            return 0
        block = self._encode([r[3] for r in rows], grow=True)
        self._tail_blocks.append(block)
        self._tail = None
        self._norms = None
        for fid, fp, _cat, _tok, created in rows:
            self._ids.append(fid)
            self._created.append(created)
            self._fps.append(fp)
            self._codes.append(self._fp_code.setdefault(fp, len(self._fp_code)))
            self._row_of[fid] = len(self._ids) - 1
        self._codes_arr = self._created_arr = None
        self._df = np.concatenate(
            [self._df, np.zeros(len(self._vocab) - len(self._df))]
        ) + np.bincount(block.indices, minlength=len(self._vocab))
        n_main = 0 if self._main is None else self._main.shape[0]
        if len(self._ids) - n_main > max(_MERGE_MIN_ROWS, n_main // 16):
            self._merge()
        return len(rows)

    def query(self, tokens: str, *, k: int = 20, exclude: Sequence[str] = ()) -> list[Match]:
        """The ``k`` failures most similar to a token string, best first."""
        self.refresh()
        with self._lock:
            hit, scores = self._scores(tokens)
            if len(hit) == 0:
                return []
            excluded = set(exclude)
            want = k + len(excluded)
            if want < len(hit):
                part = np.argpartition(-scores, want - 1)[:want]
                hit, scores = hit[part], scores[part]
            order = np.lexsort((hit, -scores))
            out = []
            for i, score in zip(hit[order].tolist(), scores[order].tolist(), strict=True):
                if self._ids[i] in excluded:
                    continue
                out.append(Match(self._ids[i], self._fps[i], score))
                if len(out) == k:
                    break
            return out

    def query_groups(
        self,
        tokens: str,
        *,
        k: int = 20,
        min_score: float = 0.0,
        exclude: Sequence[str] = (),
        exclude_newest: tuple[str, int] | None = None,
        known: Sequence[str] = (),
        enough: int | None = None,
    ) -> list[Match]:
        """The best match of each fingerprint among the top matches, best first.

        The top starts at ``k`` matches and is widened fourfold, as by repeated
        :meth:`query` calls, until it holds more than ``enough`` fingerprints scoring
        at least ``min_score`` (counting the ``known`` ones), runs out of matches, or
        ends below ``min_score``; in one vectorised pass. Only matches scoring at least
        ``min_score`` are returned, one per fingerprint. ``exclude`` names failures to
        leave out; ``exclude_newest=(fingerprint, n)`` leaves out that fingerprint's ``n``
        most recently recorded failures.
        """
        enough = k if enough is None else enough
        self.refresh()
        with self._lock:
            hit, scores = self._scores(tokens)
            # Matches below min_score only ever end the widening, never join the top:
            # the top holds the best ``want`` of those at or above it, and widening
            # stops once ``want`` exceeds them.
            keep = scores >= min_score
            if self._codes_arr is None or self._created_arr is None:
                self._codes_arr = np.asarray(self._codes, dtype=np.int64)
                self._created_arr = np.asarray(self._created, dtype=np.float64)
            drop = [r for r in map(self._row_of.get, exclude) if r is not None]
            if exclude_newest is not None and exclude_newest[0] in self._fp_code:
                rows = np.flatnonzero(self._codes_arr == self._fp_code[exclude_newest[0]])
                created = self._created_arr[rows]
                drop.extend(rows[np.argsort(-created, kind="stable")[: exclude_newest[1]]].tolist())
            if drop:
                keep &= ~np.isin(hit, drop)
            hit, scores = hit[keep], scores[keep]
            codes = self._codes_arr[hit]
            known_codes = np.asarray(
                [self._fp_code[f] for f in known if f in self._fp_code], dtype=np.int64
            )
            want = max(k, 1)
            while True:
                if want < len(hit):
                    good = np.argpartition(-scores, want - 1)[:want]
                    good = good[np.lexsort((hit[good], -scores[good]))]
                else:
                    good = np.lexsort((hit, -scores))
                if want > len(hit) or np.union1d(codes[good], known_codes).size > enough:
                    break
                want *= 4
            _, first = np.unique(codes[good], return_index=True)
            best = good[np.sort(first)]
            return [
                Match(self._ids[i], self._fps[i], score)
                for i, score in zip(hit[best].tolist(), scores[best].tolist(), strict=True)
            ]

    def _scores(self, tokens: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows sharing a token with the query, and their cosine similarity to it."""
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        if not self._ids:
            return empty
        cols = np.unique(
            np.fromiter(
                (c for c in map(self._vocab.get, tokens.split()) if c is not None),
                dtype=np.int64,
            )
        )
        if len(cols) == 0:
            return empty
        idf = self._idf()
        w2 = idf[cols] ** 2
        qnorm = float(np.sqrt(w2.sum()))
        dots = np.zeros(len(self._ids), dtype=np.float64)
        n_main = 0
        if self._main is not None:
            n_main, width = self._main.shape
            inside = cols < width
            dots[:n_main] = self._main[:, cols[inside]] @ w2[inside]
        tail = self._tail_matrix()
        if tail is not None:
            q = np.zeros(tail.shape[1], dtype=np.float64)
            inside = cols < tail.shape[1]
            q[cols[inside]] = w2[inside]
            dots[n_main:] = tail @ q
        hit = np.flatnonzero(dots > 0)
        return hit, dots[hit] / (self._row_norms(idf)[hit] * qnorm)

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

    def _row_norms(self, idf: np.ndarray) -> np.ndarray:
        """The L2 norm of every row's TF-IDF vector (1 for empty rows), cached per corpus."""
        if self._norms is None:
            sq = idf**2
            parts = []
            if self._main is not None:
                parts.append(self._main @ sq[: self._main.shape[1]])
            tail = self._tail_matrix()
            if tail is not None:
                parts.append(tail @ sq[: tail.shape[1]])
            norms = np.sqrt(np.concatenate(parts))
            norms[norms == 0] = 1.0
            self._norms = norms
        return self._norms

    def _tail_matrix(self) -> sparse.csr_matrix | None:
        if self._tail is None and self._tail_blocks:
            self._tail = _stack(self._tail_blocks, len(self._vocab), "csr")
            self._tail_blocks = [self._tail]
        return self._tail

    def _merge(self) -> None:
        blocks = [] if self._main is None else [self._main]
        self._main = _stack([*blocks, *self._tail_blocks], len(self._vocab), "csc")
        self._tail_blocks, self._tail = [], None


# Rows added since the last merge are scored row-major; past this many (or 1/16 of the
# index) they are merged into the column-major matrix.
_MERGE_MIN_ROWS = 2048


def _stack(blocks: Sequence[sparse.spmatrix], width: int, fmt: str) -> sparse.spmatrix:
    """Blocks of rows (each as wide as the vocabulary was then) as one ``width``-wide matrix."""
    width = max(width, 1)
    sized = []
    for b in blocks:
        b = b.tocoo()
        sized.append(sparse.coo_matrix((b.data, (b.row, b.col)), shape=(b.shape[0], width)))
    return sparse.vstack(sized, format=fmt)
