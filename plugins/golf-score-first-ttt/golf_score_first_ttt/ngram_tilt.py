"""Causal n-gram token tilt (PR #1514, from #1420 with the causal fix; ``NGRAM_TILT_ENABLED``).

A streaming context mixer reads the validation tokens in order and, before each next token,
emits a hint ``h`` and a strength ``beta`` from counts of what followed the same context
earlier in the stream (the prefix only). The scored distribution is the model's, tilted::

    p'(t) = p(t) * exp(beta * [t == h]) / Z,   Z = 1 + p(h) * (exp(beta) - 1)

i.e. ``beta`` is added to the hinted logit and the session normalizes the row again.

Experts (#1514's kernel semantics; all hashes are uint64 arithmetic):

* token: for orders ``k`` in 8..16 (every ``order_stride``-th), the context hash
  ``h_k = XOR_{j<k} tok[p-1-j] * PRIMES[j]``; per order a table of context -> (count, best token,
  best count); the highest order with ``best_count / count >= threshold`` and ``count >= min``
  (0.70/3 for orders 8-10, 0.60/2 for 11-13, 0.50/2 for 14-16, scaled) hints with
  ``beta = base_beta * conf``;
* within-word: the hash of the current word's tokens so far (orders 1..3) -> next token,
  ``within_beta`` when ``conf >= within_threshold`` (gated on ``tok[p-1]`` not a boundary and
  not starting a word);
* word: the hashes of the last 4 words -> the first token of the next word, ``word_beta`` when
  ``conf >= word_threshold`` and ``count >= 3`` (gated on ``tok[p-1]`` starting a word).

Candidates that agree with another candidate gain ``agree_bonus``; the largest ``beta`` wins
(the first on ties). The tables learn token ``p`` only after the hint for ``p`` was given.
Tables are Python dicts: #1514's open-addressing tables (2^26 slots, 16 probes) drop an update
when 16 probes are taken, which the dicts never do; on streams far below the table size the two
agree exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from golf_core import GolfError

M64 = (1 << 64) - 1
PRIMES = (36313, 27191, 51647, 81929, 131071, 196613, 262147, 393241, 524309, 655373, 786433, 917521,
          1048583, 1179653, 1310729, 1441801, 1572869, 1703941, 1835017, 1966087, 2097169, 2228243, 2359319,
          2490389, 2621471, 2752549, 2883617, 3014687, 3145757, 3276833, 3407903, 3538973)
PAIR_MIX = 1000003
PREFIX_BASE = 1099511628211
LEN_MIX = 0x9E3779B185EBCA87
OPEN_MIN, OPEN_MAX = 8, 16
WITHIN_ORDERS, WORD_ORDER = 3, 4


@dataclass
class TiltConfig:
    """Mixer settings (defaults: #1514 as run: ``NGRAM_WITHIN_BETA=0``, ``NGRAM_WORD_BETA=0``)."""

    base_beta: float = 2.0
    agree_bonus: float = 0.1
    within_threshold: float = 0.25
    within_beta: float = 0.0
    word_threshold: float = 0.80
    word_beta: float = 0.0
    token_threshold_scale: float = 1.0
    order_stride: int = 2


class _Table:
    """Context -> [count, best token, best count], with pair counts deciding the best token."""

    __slots__ = ("ctx", "pair")

    def __init__(self) -> None:
        self.ctx: dict[int, list[int]] = {}
        self.pair: dict[int, int] = {}

    def lookup(self, key: int) -> tuple[int, float, int]:
        e = self.ctx.get(key)
        if e is None:
            return -1, 0.0, 0
        return e[1], e[2] / e[0], e[0]

    def update(self, key: int, pair_key: int, token: int) -> None:
        pc = self.pair.get(pair_key, 0) + 1
        self.pair[pair_key] = pc
        e = self.ctx.get(key)
        if e is None:
            self.ctx[key] = [1, token, 1]
            return
        e[0] += 1
        if token == e[1]:
            e[2] = (e[2] + 1) & 0xFFFF
        elif pc > e[2]:
            e[1], e[2] = token, min(pc, 0xFFFF)


def _pair_key(ctx: int, tok: int, order: int) -> int:
    return ((ctx * PAIR_MIX) & M64) ^ ((tok * PRIMES[order % 32]) & M64)


def _extend_prefix(h: int, tok: int, pos: int) -> int:
    return ((h * PREFIX_BASE) & M64) ^ (((tok + 1) * PRIMES[pos % 32]) & M64)


class NgramMixer:
    """Streams tokens; ``push(tok)`` learns ``tok`` and returns the hint for the next position.

    ``has_leading_space`` / ``is_boundary``: per token id (the byte tables of the tokenizer).
    """

    def __init__(self, has_leading_space: np.ndarray, is_boundary: np.ndarray, cfg: TiltConfig = TiltConfig()):
        self.cfg = cfg
        self.ls = np.asarray(has_leading_space, dtype=bool).tolist()
        self.bd = np.asarray(is_boundary, dtype=bool).tolist()
        self.active = [(o - OPEN_MIN) % cfg.order_stride == 0 for o in range(OPEN_MIN, OPEN_MAX + 1)]
        s = cfg.token_threshold_scale
        self.thr = [(0.70 * s, 3)] * 3 + [(0.60 * s, 2)] * 3 + [(0.50 * s, 2)] * 3
        self.open = [_Table() for _ in range(OPEN_MAX - OPEN_MIN + 1)]
        self.within = [_Table() for _ in range(WITHIN_ORDERS)]
        self.word = _Table()
        self.within_hash, self.within_len = 0, 0
        self.ring, self.ring_head, self.ring_fill = [0] * WORD_ORDER, 0, 0
        self.word_hash, self.word_len = 0, 0
        self.history: list[int] = []     # the last OPEN_MAX tokens
        self.pos = 0                     # tokens pushed
        self._hashes: list[int] = []     # context hashes of position ``pos`` (for its update)

    # -- experts --------------------------------------------------------------------------

    def _context_hashes(self) -> list[int]:
        h, out = 0, []
        hist = self.history
        for k in range(min(OPEN_MAX, len(hist))):
            h ^= (hist[-1 - k] * PRIMES[k]) & M64
            out.append(h)
        return out

    def _token_hint(self, hashes: list[int]) -> tuple[int, float]:
        for order in range(min(OPEN_MAX, len(hashes)), OPEN_MIN - 1, -1):
            oi = order - OPEN_MIN
            if not self.active[oi]:
                continue
            hint, conf, count = self.open[oi].lookup(hashes[order - 1])
            thr, need = self.thr[oi]
            if hint >= 0 and conf >= thr and count >= need:
                return hint, self.cfg.base_beta * conf
        return -1, 0.0

    def _within_hint(self, is_bnd: bool, is_ws: bool) -> tuple[int, float]:
        if is_bnd or is_ws or self.within_len == 0:
            return -1, 0.0
        ctx = self.within_hash ^ ((self.within_len * LEN_MIX) & M64)
        hint, conf, count = self.within[min(self.within_len - 1, WITHIN_ORDERS - 1)].lookup(ctx)
        if hint >= 0 and conf >= self.cfg.within_threshold and count >= 1:
            return hint, self.cfg.within_beta
        return -1, 0.0

    def _word_ctx(self) -> int:
        h, n = 0, min(self.ring_fill, WORD_ORDER)
        for j in range(n):
            h ^= (self.ring[(self.ring_head - n + j + WORD_ORDER) % WORD_ORDER] * PRIMES[j]) & M64
        return h

    def _word_hint(self, is_ws: bool) -> tuple[int, float]:
        if not is_ws or self.ring_fill < WORD_ORDER:
            return -1, 0.0
        hint, conf, count = self.word.lookup(self._word_ctx())
        if hint >= 0 and conf >= self.cfg.word_threshold and count >= 3:
            return hint, self.cfg.word_beta
        return -1, 0.0

    def _flush_word(self) -> None:
        if self.word_len == 0:
            return
        self.ring[self.ring_head] = self.word_hash
        self.ring_head = (self.ring_head + 1) % WORD_ORDER
        self.ring_fill = min(self.ring_fill + 1, WORD_ORDER)
        self.word_hash, self.word_len = 0, 0

    def _learn(self, tok: int) -> None:
        """Learn ``tok`` at position ``pos`` (its context hashes are ``_hashes``)."""
        hashes = self._hashes
        for order in range(OPEN_MIN, min(OPEN_MAX, len(hashes)) + 1):
            oi = order - OPEN_MIN
            if self.active[oi]:
                ch = hashes[order - 1]
                self.open[oi].update(ch, _pair_key(ch, tok, order), tok)
        is_bnd, is_ws = self.bd[tok], self.ls[tok]
        # within-word
        if is_bnd:
            self.within_hash, self.within_len = 0, 0
        elif is_ws or self.within_len == 0:
            self.within_hash, self.within_len = _extend_prefix(0, tok, 0), 1
        else:
            ctx = self.within_hash ^ ((self.within_len * LEN_MIX) & M64)
            pk = ((ctx * PAIR_MIX) & M64) ^ ((tok * PRIMES[0]) & M64)
            self.within[min(self.within_len - 1, WITHIN_ORDERS - 1)].update(ctx, pk, tok)
            self.within_hash = _extend_prefix(self.within_hash, tok, self.within_len)
            self.within_len += 1
        # word
        if is_bnd:
            self._flush_word()
        else:
            if is_ws:
                self._flush_word()
                if self.ring_fill >= WORD_ORDER:
                    ctx = self._word_ctx()
                    self.word.update(ctx, _pair_key(ctx, tok, WORD_ORDER), tok)
            self.word_hash = (self.word_hash * 31 + tok) & M64
            self.word_len += 1

    # -- stream ---------------------------------------------------------------------------

    def push(self, tok: int) -> tuple[int, float]:
        """Read the next stream token; return ``(hint, beta)`` for the token after it (-1: none)."""
        tok = int(tok)
        if self.pos > 0:      # position 0 has no context: #1514 starts learning at position 1
            self._learn(tok)
        self.history.append(tok)
        if len(self.history) > OPEN_MAX:
            del self.history[0]
        self.pos += 1
        hashes = self._context_hashes()
        self._hashes = hashes
        is_bnd, is_ws = self.bd[tok], self.ls[tok]
        cands = [c for c in (self._token_hint(hashes), self._within_hint(is_bnd, is_ws), self._word_hint(is_ws))
                 if c[0] >= 0]
        if not cands:
            return -1, 0.0
        betas = [b for _, b in cands]
        for a in range(len(cands)):
            if any(cands[b][0] == cands[a][0] for b in range(len(cands)) if b != a):
                betas[a] += self.cfg.agree_bonus
        best = max(range(len(cands)), key=lambda i: (betas[i], -i))
        return cands[best][0], betas[best]

    def hints(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """``push`` every token; ``(hints int64, betas float64)``, entry ``i`` for the token after ``tokens[i]``."""
        out_h = np.empty(len(tokens), dtype=np.int64)
        out_b = np.empty(len(tokens), dtype=np.float64)
        for i, t in enumerate(np.asarray(tokens).tolist()):
            out_h[i], out_b[i] = self.push(t)
        return out_h, out_b


def tilt_rows(rows: torch.Tensor, hints: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Rows ``[n, V]`` with ``beta`` added to the hinted logit where ``hint >= 0`` (float64).
    Normalizing a row gives ``p(t) exp(beta [t == h]) / Z``."""
    z = rows.double().clone()
    hit = hints >= 0
    if bool(hit.any()):
        idx = torch.nonzero(hit).squeeze(1)
        z[idx, hints[idx]] += betas[idx].to(z)
    return z


class StreamTilt:
    """The tilt over a session's scored rows, in stream order.

    ``apply(batch, rows)``: rows ``[n_scored, V]`` in ``score_mask`` order whose targets must be
    contiguous and after every target this tilt saw before; the mixer reads each scored
    position's *input* token (the prefix), so nothing is read of a target before it is scored.
    On several ranks each rank scores its own share of every chunk: before a share, the tilt
    reads the input tokens of the targets in between (scored by other ranks; the prefix of this
    rank's next target) as context from ``session`` (``span_batch`` scoring nothing) and lets
    the mixer learn them, so every rank's mixer is in the state of the one-rank run and gives
    the same hints. Each rank then reads the whole prefix, as one rank would (no speed-up).
    """

    #: Tokens of context read per ``span_batch`` while catching up.
    CATCH_UP_TOKENS = 1 << 16

    def __init__(self, mixer: NgramMixer, session=None):
        self.mixer = mixer
        self.session = session
        self.next_target = 0
        self.hinted = 0

    def catch_up(self, target: int) -> None:
        """Learn the input tokens of targets ``[next_target, target)`` from the session's stream
        (context only: nothing scored, no target of ``target`` on read)."""
        if self.session is None:
            raise GolfError(f"n-gram tilt: scored targets must follow the stream; expected {self.next_target}.., "
                            f"got {target}.. (a tilt without the session cannot read the prefix in between)")
        for lo in range(self.next_target, target, self.CATCH_UP_TOKENS):
            n = min(self.CATCH_UP_TOKENS, target - lo)
            ctx = self.session.span_batch([lo], [n], [lo + n], [lo + n]).x[0, :n].cpu().numpy()
            self.mixer.hints(ctx)
        self.next_target = target

    def apply(self, batch, rows: torch.Tensor) -> torch.Tensor:
        """The tilted rows of ``batch`` (see the class docstring)."""
        targets = batch.scored_targets
        if targets.size == 0:
            return rows
        first = int(targets[0])
        if first < self.next_target or not np.array_equal(targets, np.arange(first, first + targets.size)):
            raise GolfError(f"n-gram tilt: a batch's scored targets must be contiguous and follow those scored "
                            f"before (next {self.next_target}); got {first}..{int(targets[-1])}")
        if first > self.next_target:
            self.catch_up(first)
        inputs = batch.x[batch.score_mask].cpu().numpy()
        h, b = self.mixer.hints(inputs)
        self.next_target += int(targets.size)
        self.hinted += int((h >= 0).sum())
        dev = rows.device
        return tilt_rows(rows, torch.from_numpy(h).to(dev), torch.from_numpy(b).to(dev))
