"""Binomial diffusion for binary data (Sohl-Dickstein et al. 2015, App. B table; model.md 7).

pi = independent Bernoulli(m). Forward kernel q(x^t_i = 1 | x^{t-1}) = x^{t-1}_i (1 - beta_t)
+ m beta_t, so q(x^t_i = 1 | x^0) = x^0_i abar_t + m (1 - abar_t) (= x^0 (T-t)/T + m t/T for the
baseline schedule with beta_1 = 1/T). The reverse kernel is a perturbation of the forward form,
f_b = sigmoid(logit(x^t_i (1 - beta_t) + m beta_t) + z_i). The bound has the form of Eq. 14
with Bernoulli KLs. Stateless, float64, nats summed over dimensions; beta is (T,) float64 and t
a (B,) long tensor in 1..T.
"""

from __future__ import annotations

import torch
from torch.nn.functional import logsigmoid

from diffusion.processes.base import Bernoulli, DerivedSteps, PerSchedule, StepRows, rand
from diffusion.processes.gaussian import alpha_bar, sum_dims


def neg_entropy(q: torch.Tensor) -> torch.Tensor:
    """Elementwise q log q + (1 - q) log(1 - q), nats (0 log 0 = 0)."""
    return torch.special.xlogy(q, q) + torch.special.xlogy(1 - q, 1 - q)


def is_bits(x: torch.Tensor) -> bool:
    """Whether every entry of x is exactly 0 or 1 (NaN is not)."""
    lo, hi = torch.aminmax(x)
    return bool(lo >= 0) and bool(hi <= 1) and torch.equal(x, x.round())


def bernoulli_kl_logits(q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(Bern(q) || Bern(sigmoid(logit_p))), nats; q may be exactly 0 or 1."""
    return neg_entropy(q) - q * logsigmoid(logit_p) - (1 - q) * logsigmoid(-logit_p)


def bernoulli_log_prob(x: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Elementwise log Bern(x; sigmoid(logit_p)), nats."""
    return x * logsigmoid(logit_p) + (1 - x) * logsigmoid(-logit_p)


def _log_bern(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Elementwise log Bern(x; p) for x in {0, 1}, nats; p may be exactly 0 or 1."""
    return torch.where(x.double() > 0.5, torch.log(p), torch.log1p(-p))


_BITS = torch.tensor([[0.0], [1.0]], dtype=torch.float64)  # x^0_i = 0, 1 as a (2, 1) batch


class BinomialDiffusion(DerivedSteps):
    """Binomial diffusion towards Bernoulli(m); a `diffusion.processes.base.Process`."""

    kind = "binomial"
    n_outputs = 1  # z per dimension

    def __init__(self, m: float) -> None:
        self.m = float(m)
        # per schedule (diffusion.processes.base.PerSchedule): the forward logits (2, T) and
        # abar_0..T (T + 1,), computed once per fixed schedule, once per step for a learned one
        self._logits = PerSchedule(self._logit_pair)
        self._abar = PerSchedule(lambda beta: torch.cat([beta.new_ones(1), alpha_bar(beta)]))
        self._rows = StepRows(
            lambda table, t, x: torch.index_select(table, 1, t - 1).reshape(
                (2, -1) + (1,) * (x.dim() - 1)
            )
        )
        # for bits x^0 (binary data): the training step's numbers at every (t, x^0_i, x^t_i)
        # and the edge terms' per-dimension term at x^0_i = 0, 1, once per schedule
        self._cases = PerSchedule(self._case_table)
        self.traced_bits = False  # `trace_hints`
        self._edge_at_bits = PerSchedule(
            lambda beta: self._edge_elements(_BITS.to(beta.device), beta)[:, 0]
        )
        self._bits_of: tuple | None = None  # (x, x's version, is_bits(x)) of the last call

    # -- forward process
    def _logit_pair(self, b: torch.Tensor) -> torch.Tensor:
        """(2, *b.shape): logit q(x^t = 1 | x^{t-1}) for x^{t-1} = 0 and 1 at beta_t = b."""
        m = self.m
        p1 = 1 - (1 - m) * b  # x = 1
        p0 = m * b  # x = 0
        return torch.stack(
            [torch.log(p0) - torch.log1p(-p0), torch.log(p1) - torch.log((1 - m) * b)]
        )

    def logit_table(self, beta: torch.Tensor) -> torch.Tensor:
        """(2, T) float64 forward logits for x^{t-1} = 0, 1 at every t; computed once per
        schedule (kept while `beta` is the same tensor, unchanged in place; a learned
        schedule's new tensor each step: once per step)."""
        return self._logits(beta)

    def abar_table(self, beta: torch.Tensor) -> torch.Tensor:
        """(T + 1,) float64 abar_0 = 1, abar_t = prod_{s<=t} (1 - beta_s); once per schedule."""
        return self._abar(beta)

    def _logits_at(self, beta: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(2, B, 1, ..., 1): the table's logits for x^{t-1} = 0, 1 at steps t, against x
        (B, *shape); one gather, reused by further calls with the same (beta, t)."""
        return self._rows(self.logit_table(beta), t, x)

    def forward_logit(
        self, x_prev: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """logit q(x^t = 1 | x^{t-1}) = logit(x (1 - beta_t) + m beta_t), computed stably
        (the table's entries at t, picked by x^{t-1})."""
        x = x_prev.double()
        table = self._logits_at(beta, t, x)
        return torch.where(x > 0.5, table[1], table[0])

    def q_prob(self, x0: torch.Tensor, t: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """q(x^t = 1 | x^0) = x^0 abar_t + m (1 - abar_t); t = 0 allowed (gives x^0)."""
        a = self.abar_table(beta)[t].reshape((-1,) + (1,) * (x0.dim() - 1))
        return x0.double() * a + self.m * (1 - a)

    def q_noise(
        self, shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device
    ) -> torch.Tensor:
        """The draws `q_sample` turns into x^t (U(0, 1), float64): drawn apart from the
        arithmetic so that a compiled training step gets them as an input."""
        return rand(shape, generator, device)

    def q_sample(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x^t ~ q(x^t | x^0) (0/1 float64). `noise`: optional U(0, 1) draws to reuse."""
        if noise is None:
            noise = self.q_noise(x0.shape, generator, x0.device)
        return (noise < self.q_prob(x0, t, beta)).double()

    def log_q(
        self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log q(x^t | x^0), nats."""
        return sum_dims(_log_bern(xt, self.q_prob(x0, t, beta)))

    def q_step_sample(
        self,
        x_prev: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        p = torch.sigmoid(self.forward_logit(x_prev, t, beta))
        return (rand(x_prev.shape, generator, x_prev.device) < p).double()

    def log_q_step(
        self, x_prev: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        return sum_dims(bernoulli_log_prob(xt.double(), self.forward_logit(x_prev, t, beta)))

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """q(x^{t-1} = 1 | x^t, x^0) by Bayes over x^{t-1} in {0, 1} (model.md section 7)."""
        xt = xt.double()
        prior1 = self.q_prob(x0, t - 1, beta)
        logits = self._logits_at(beta, t, xt)  # forward logits from x^{t-1} = 0 and 1
        lik1 = torch.exp(bernoulli_log_prob(xt, logits[1]))
        lik0 = torch.exp(bernoulli_log_prob(xt, logits[0]))
        num = lik1 * prior1
        return num / (num + lik0 * (1 - prior1))

    def q_posterior_bits(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """`q_posterior` for x^t in {0, 1} (what `q_sample` draws), bit for bit: the forward
        likelihoods exp(log Bern(x^t; logit)) take one of two values per example, computed
        on the (B, 1) rows and picked by x^t instead of evaluated at every element."""
        xt = xt.double()
        prior1 = self.q_prob(x0, t - 1, beta)
        logits = self._logits_at(beta, t, xt)  # (2, B, 1, ..., 1): from x^{t-1} = 0 and 1
        on = xt > 0.5
        lik = torch.exp(logsigmoid(torch.stack([logits, -logits])))  # [x^t = 1, x^t = 0]
        lik1 = torch.where(on, lik[0, 1], lik[1, 1])
        lik0 = torch.where(on, lik[0, 0], lik[1, 0])
        num = lik1 * prior1
        return num / (num + lik0 * (1 - prior1))

    def _bits(self, x: torch.Tensor) -> bool:
        """`is_bits(x)`, kept for the same unchanged tensor (a training step asks twice).
        While torch.compile traces, the answer `trace_hints` gave for the step's batch (a
        graph cannot test the data's values; torch.compile guards on the answer, so each
        answer has its own graph)."""
        if torch.compiler.is_compiling():
            return self.traced_bits
        key = self._bits_of
        if key is None or key[0] is not x or key[1] != x._version:
            self._bits_of = key = (x, x._version, is_bits(x))
        return key[2]

    def known_bits(self, x: torch.Tensor) -> None:
        """x is bits by construction (a binary data set's batch): `_bits(x)` answers True for
        it without testing its values (a test of a toy batch costs about 1% of its step)."""
        self._bits_of = (x, x._version, True)

    def trace_hints(self, x0: torch.Tensor) -> None:
        """Before a compiled training step on x0: whether x0 is bits (`_bits`)."""
        self.traced_bits = self._bits(x0)

    def _case_table(self, beta: torch.Tensor) -> torch.Tensor:
        """(3, T * 4): q(x^{t-1} = 1 | x^t, x^0), its negative entropy and the forward logit
        at x^t, for t = 1..T and the four cases (x^0, x^t) = (0, 0), (0, 1), (1, 0), (1, 1)
        (column 4 (t - 1) + 2 x^0 + x^t), by the per-element formulas themselves."""
        T = beta.shape[0]
        x0c = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64, device=beta.device)
        xtc = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64, device=beta.device)
        t = torch.arange(1, T + 1, device=beta.device)
        x0c, xtc = x0c.expand(T, 4), xtc.expand(T, 4)
        q = self.q_posterior_bits(x0c, xtc, t, beta)
        cases = torch.stack([q, neg_entropy(q), self.forward_logit(xtc, t, beta)])
        return cases.reshape(3, T * 4)

    def step_terms(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q, neg_entropy(q), forward logit at x^t), each (B, *shape), for x^t in {0, 1}:
        what the training step's KL reads (diffusion.processes.fused), with
        q = q(x^{t-1} = 1 | x^t, x^0). For bits x^0 and a fixed schedule, one lookup in the
        per-schedule table of the four cases (x^0_i, x^t_i) at each t (`_case_table`);
        otherwise computed per element."""
        if beta.requires_grad or not self._bits(x0):
            q = self.q_posterior_bits(x0, xt, t, beta)
            return q, neg_entropy(q), self.forward_logit(xt, t, beta)
        if torch.compiler.is_compiling():
            return self._traced_step_terms(x0, xt, t, beta)
        case = (x0 * 2 + xt).long()  # (B, *shape) in 0..3
        column = (t.reshape((-1,) + (1,) * (x0.dim() - 1)) - 1) * 4 + case
        column = column.reshape(-1)  # one 1-D index_select per row: a third of t-indexing
        q, neg_ent, base = (  # each (B, *shape)
            torch.index_select(row, 0, column).reshape(x0.shape)
            for row in self._cases(beta).unbind(0)
        )
        return q, neg_ent, base

    def _traced_step_terms(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`step_terms` from the table as torch.compile traces it: each row's four cases
        gathered once (B x 12 numbers), then chosen per element by x^0 and x^t. The same
        numbers (a choice, no arithmetic); inductor turns the choice into vector blends
        where a lookup per element is an indirect load per element (3 per element, a sixth
        of the heartbeat's compiled step, issue 14)."""
        rows = self._cases(beta).view(3, beta.shape[0], 4)[:, t - 1]  # (3, B, 4)
        per_row = (-1,) + (1,) * (x0.dim() - 1)
        c00, c01, c10, c11 = rows.reshape(3, *per_row, 4).unbind(-1)  # each (3, B, 1, ...)
        one0, one_t = x0 > 0.5, xt > 0.5
        chosen = torch.where(one0, torch.where(one_t, c11, c10), torch.where(one_t, c01, c00))
        q, neg_ent, base = chosen.unbind(0)
        return q, neg_ent, base

    def log_q_posterior(
        self,
        x_prev: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) log q(x^{t-1} | x^t, x^0), nats, t >= 2."""
        return sum_dims(_log_bern(x_prev, self.q_posterior(x0, xt, t, beta)))

    # -- reverse process
    def p_logit(
        self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """logit p(x^{t-1} = 1 | x^t) = logit(x^t (1 - beta_t) + m beta_t) + z; z: (B,*shape,1).

        Rows with t = 1 use the fixed first step (reversal under pi = the forward form).
        """
        base = self.forward_logit(xt, t, beta)
        first = (t == 1).reshape((-1,) + (1,) * (xt.dim() - 1))
        return base + torch.where(first, 0.0, z[..., 0])

    def p_logit_at(
        self, xt: torch.Tensor, t: int, z: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """`p_logit` for a batch whose rows are all at step t (an int), z (B, *shape): the same
        numbers from the two forward logits at t as single numbers."""
        logits = self.logit_table(beta)[:, t - 1]  # from x^{t-1} = 0, 1
        base = torch.where(xt.double() > 0.5, logits[1], logits[0])
        return base if t == 1 else base + z

    def kl(
        self,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) KL(q(x^{t-1} | x^t, x^0) || p(x^{t-1} | x^t)), nats."""
        q = self.q_posterior(x0, xt, t, beta)
        return sum_dims(bernoulli_kl_logits(q, self.p_logit(xt, t, z, beta)))

    def edge_terms(self, x0: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """(B,) E_q[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi), nats, exact (sum over x^1).

        A sum over dimensions of one term per dimension that depends on x^0_i alone: for bits
        (binary data, a fixed schedule) the term is evaluated at 0 and at 1 once per schedule
        and weighted by the counts of each, instead of at every element (the same sum to
        float64 rounding)."""
        if not beta.requires_grad and self._bits(x0):
            at_bit = self._edge_at_bits(beta)  # (2,): the term at x^0_i = 0, 1
            ones = sum_dims(x0.double())
            return (x0[0].numel() - ones) * at_bit[0] + ones * at_bit[1]
        return sum_dims(self._edge_elements(x0.double(), beta))

    def _edge_elements(self, x0: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """(B, *shape) the terms of `edge_terms` per dimension. The first step's logits (from
        x^1 = 1 and 0) and logit(m) are one number each, broadcast against x0."""
        one = torch.ones(x0.shape[0], dtype=torch.long, device=x0.device)
        q1 = self.q_prob(x0, one, beta)  # q(x^1 = 1 | x^0)
        first = self.logit_table(beta)[:, 0]  # first step: logit p(x^0 = 1 | x^1 = 0), (x^1 = 1)
        l0 = q1 * bernoulli_log_prob(x0, first[1]) + (1 - q1) * bernoulli_log_prob(x0, first[0])
        qT = self.q_prob(x0, one * len(beta), beta)
        m_logit = torch.tensor(self.m, dtype=torch.float64, device=x0.device).logit()
        return l0 - bernoulli_kl_logits(qT, m_logit)

    def log_prior(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        return sum_dims(bernoulli_log_prob(x, torch.full_like(x, self.m).logit()))

    def prior(self, shape: tuple[int, ...], device: torch.device) -> Bernoulli:
        """pi = Bernoulli(m) per bit over a batch of shape (B, *example shape)."""
        return Bernoulli(torch.full(shape, self.m, dtype=torch.float64, device=device))

    def p_step(
        self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor, beta: torch.Tensor
    ) -> Bernoulli:
        """p(x^{t-1} | x^t) = Bernoulli(f_b) as a step distribution."""
        return Bernoulli(torch.sigmoid(self.p_logit(xt, t, z, beta)))

    def log_p_step(
        self,
        x_prev: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        return sum_dims(bernoulli_log_prob(x_prev.double(), self.p_logit(xt, t, z, beta)))
