"""A small Gaussian process: ARD Matérn plus a linear kernel plus noise, fitted by MAP.

Inputs live in [-1, 1]^d. Columns may share a length scale (`groups`): Protein gives the
one-hot columns of a categorical one, so any two different choices are equally far
apart (sqrt(2) / l), an overlap (Hamming) kernel on the categorical inside the Matérn.
Targets are standardised inside. Hyperparameters are fitted
by maximising the marginal likelihood times weak log-normal priors (L-BFGS-B with
analytic gradients and a few restarts), which keeps the fit sane with 1 point,
duplicate points or constant targets.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_solve, lapack, solve_triangular
from scipy.optimize import minimize

_LOG_2PI = math.log(2.0 * math.pi)
_PAIRWISE_BLOCK = 128  # numpy's pairwise sum adds up to this many terms with eight running sums
_BLOCK_ELEMENTS = 12_000  # floats in one of _cross's block arrays: under glibc's 128 KiB mmap threshold


def _matern(r: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """The Matérn correlation at distances `r`, and g with dM/dlog(l_k) = g * (dx_k / l_k)^2."""
    if nu == 1.5:
        e = np.exp(-math.sqrt(3.0) * r)
        return (1.0 + math.sqrt(3.0) * r) * e, 3.0 * e
    s5r = math.sqrt(5.0) * r
    e = np.exp(-s5r)
    return (1.0 + s5r + 5.0 / 3.0 * r * r) * e, 5.0 / 3.0 * (1.0 + s5r) * e


def _scaled_sq_distances(a: np.ndarray, b: np.ndarray, ls: np.ndarray) -> np.ndarray:
    """sum_k ((a_ik - b_jk) / ls_k)^2 for every row pair, shape (len(a), len(b)).

    Summed column by column, in the order numpy's pairwise sum over the last axis adds
    them (eight running sums, then the rest), so the result is bit for bit that of
    `(((a[:, None] - b[None]) / ls) ** 2).sum(-1)` (and so are the suggestions), without its
    (m, n, d) temporary (docs/optimizers.md, "Speed").
    """
    d = a.shape[1]
    if d > _PAIRWISE_BLOCK:  # numpy splits longer sums in halves: the plain reduction
        diff = (a[:, None, :] - b[None, :, :]) / ls
        out: np.ndarray = (diff * diff).sum(-1)
        return out

    def column(k: int) -> np.ndarray:
        step: np.ndarray = (a[:, k, None] - b[None, :, k]) / ls[k]
        step *= step
        return step

    whole = 0 if d < 8 else d - d % 8
    if not whole:
        total = np.zeros((len(a), len(b)))
    else:
        sums = [column(j) for j in range(8)]
        for start in range(8, whole, 8):
            for j in range(8):
                sums[j] += column(start + j)
        first_half = (sums[0] + sums[1]) + (sums[2] + sums[3])
        total = first_half + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
    for k in range(whole, d):
        total += column(k)
    return total


class GaussianProcess:
    """GP regression with hyperparameters fitted on construction.

    Args:
        x: training inputs, shape (n, d), in [-1, 1].
        y: training targets, shape (n,).
        rng: draws the restart points of the hyperparameter fit.
        nu: Matérn smoothness, 1.5 or 2.5.
        restarts: extra random starts of the fit.
        theta: fixed hyperparameters (log scale) instead of a fit.
        groups: the length-scale index of each column (default: one per column).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        *,
        nu: float = 2.5,
        restarts: int = 2,
        theta: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> None:
        self.x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        self.nu = nu
        n, columns = self.x.shape
        self.groups = np.arange(columns) if groups is None else np.asarray(groups, dtype=int)
        d = int(self.groups.max()) + 1 if columns else 0
        self.y_mean = float(y.mean()) if n else 0.0
        std = float(y.std()) if n > 1 else 0.0
        self.y_std = std if std > 1e-12 else 1.0
        self.y = (y - self.y_mean) / self.y_std
        # weak priors: length scales around the box's size (wider in more dimensions)
        self._prior_mean = np.concatenate(
            [
                np.full(d, math.log(2.0) + 0.5 * math.log(max(d, 1)) - 0.3),
                [0.0, math.log(1e-3), math.log(0.05)],
            ]
        )
        self._prior_sd = np.concatenate([np.full(d, 1.0), [1.0, 2.0, 1.5]])
        self._bounds = [(math.log(0.02), math.log(30.0))] * d + [
            (math.log(0.05), math.log(20.0)),
            (math.log(1e-6), math.log(2.0)),
            (math.log(1e-6), math.log(10.0)),
        ]
        self._sq = ((self.x[:, None, :] - self.x[None, :, :]) ** 2).reshape(n * n, columns)  # squared diffs
        self._gram = self.x @ self.x.T
        if theta is None:
            theta = self._fit(rng, restarts) if n > 1 else self._prior_mean.copy()
        self.theta = theta
        self._factor()

    # -- kernel ------------------------------------------------------------------------------

    def _unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Length scales (one per column), signal variance, noise variance, linear weight."""
        d = len(theta) - 3
        ls = np.exp(theta[:d])[self.groups]
        return ls, math.exp(theta[d]), math.exp(theta[d + 1]), math.exp(theta[d + 2])

    def _cross(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The kernel between the rows of `a` and of `b`.

        A thousand candidates' distances and Matérn terms are worked out in blocks of rows
        whose arrays stay under the size at which the C allocator maps fresh pages for each
        array and returns them when it is freed: those page faults took a quarter of a
        suggestion. Elementwise, a block's arithmetic is the whole array's, so the kernel is
        bit for bit the same (docs/optimizers.md, "Speed"); the matrix product is taken whole,
        as BLAS may add up a block's products in another order.
        """
        ls, sf2, _, lin = self._unpack(self.theta)
        linear = a @ b.T
        rows = max(1, _BLOCK_ELEMENTS // max(len(b), 1))
        k = np.empty((len(a), len(b)))
        for start in range(0, len(a), rows):
            block = slice(start, start + rows)
            r = np.sqrt(np.maximum(_scaled_sq_distances(a[block], b, ls), 0.0))
            k[block] = sf2 * _matern(r, self.nu)[0] + lin * linear[block]
        return k

    def _nll(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        ls, sf2, sn2, lin = self._unpack(theta)
        n = self.y.shape[0]
        inv_ls2 = 1.0 / (ls * ls)
        r = np.sqrt(np.maximum(self._sq @ inv_ls2, 0.0)).reshape(n, n)
        corr, g = _matern(r, self.nu)
        k = sf2 * corr + lin * self._gram + (sn2 + 1e-8) * np.eye(n)
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((chol, True), self.y)
        kinv, info = lapack.dpotri(chol, lower=1)
        if info != 0:
            return 1e10, np.zeros_like(theta)
        kinv = np.tril(kinv) + np.tril(kinv, -1).T
        w = np.outer(alpha, alpha) - kinv
        nll = 0.5 * float(self.y @ alpha) + float(np.log(np.diag(chol)).sum()) + 0.5 * n * _LOG_2PI
        grad = np.empty_like(theta)
        per_column = -0.5 * ((w * (sf2 * g)).reshape(-1) @ self._sq) * inv_ls2
        grad[:-3] = np.bincount(self.groups, weights=per_column, minlength=len(theta) - 3)
        grad[-3] = -0.5 * float((w * (sf2 * corr)).sum())
        grad[-2] = -0.5 * sn2 * float(np.trace(w))
        grad[-1] = -0.5 * lin * float((w * self._gram).sum())
        z = (theta - self._prior_mean) / self._prior_sd
        return nll + 0.5 * float(z @ z), grad + z / self._prior_sd

    def _fit(self, rng: np.random.Generator, restarts: int) -> np.ndarray:
        lo = np.array([b[0] for b in self._bounds])
        hi = np.array([b[1] for b in self._bounds])
        starts = [self._prior_mean.copy()]
        for _ in range(restarts):
            starts.append(np.clip(self._prior_mean + self._prior_sd * rng.standard_normal(len(lo)), lo, hi))
        best, best_value = self._prior_mean.copy(), math.inf
        for start in starts:
            result = minimize(
                self._nll,
                np.clip(start, lo, hi),
                jac=True,
                method="L-BFGS-B",
                bounds=self._bounds,
                options={"maxiter": 100, "ftol": 1e-7},
            )
            if np.isfinite(result.fun) and result.fun < best_value:
                best, best_value = result.x, float(result.fun)
        return np.asarray(best)

    def _factor(self) -> None:
        _, _, sn2, _ = self._unpack(self.theta)
        n = self.x.shape[0]
        k = self._cross(self.x, self.x) + (sn2 + 1e-8) * np.eye(n)
        jitter = 1e-8
        while True:
            try:
                self._chol = np.linalg.cholesky(k + jitter * np.eye(n))
                break
            except np.linalg.LinAlgError:
                jitter *= 10.0
                if jitter > 1.0:
                    raise
        self._alpha = cho_solve((self._chol, True), self.y)

    def posterior_draws(
        self, rng: np.random.Generator, n: int, *, thin: int = 20, step: float = 0.3
    ) -> list[GaussianProcess]:
        """`n` GPs on the same data, at hyperparameters drawn from their posterior.

        A random-walk Metropolis chain on the fit's objective (marginal likelihood times the
        priors, within the bounds), started at the fitted hyperparameters; every `thin`-th
        state is a draw. Proposals are Gaussian steps of `step` on the log scale.
        """
        lo = np.array([b[0] for b in self._bounds])
        hi = np.array([b[1] for b in self._bounds])
        theta = self.theta.copy()
        log_p = -self._nll(theta)[0]
        draws: list[GaussianProcess] = []
        for i in range(n * thin):
            proposal = theta + step * rng.standard_normal(len(theta))
            if np.all(proposal >= lo) and np.all(proposal <= hi):
                log_q = -self._nll(proposal)[0]
                if math.log(rng.random() + 1e-300) < log_q - log_p:
                    theta, log_p = proposal, log_q
            if (i + 1) % thin == 0:
                draws.append(self._sibling(self.x, self.y, theta.copy()))
        return draws

    def _sibling(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> GaussianProcess:
        """A GP on `x` and standardised targets `y`, with this one's scaling and `theta`."""
        other = GaussianProcess.__new__(GaussianProcess)
        other.x, other.nu, other.theta, other.groups = x, self.nu, theta, self.groups
        other.y_mean, other.y_std, other.y = self.y_mean, self.y_std, y
        other._factor()
        return other

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at `xs` (shape (m, d)), in target units."""
        xs = np.atleast_2d(xs)
        ls, sf2, _, lin = self._unpack(self.theta)
        if self.x.shape[0] == 0:
            return np.full(len(xs), self.y_mean), np.full(len(xs), math.sqrt(sf2) * self.y_std)
        ks = self._cross(xs, self.x)
        mean = ks @ self._alpha
        v = solve_triangular(self._chol, ks.T, lower=True, check_finite=False)
        var = sf2 + lin * (xs * xs).sum(1) - (v * v).sum(0)
        sd = np.sqrt(np.maximum(var, 1e-12))
        return mean * self.y_std + self.y_mean, sd * self.y_std

    def conditioned(self, x_new: np.ndarray, y_new: np.ndarray) -> GaussianProcess:
        """The same GP (same hyperparameters) with extra points, e.g. fantasies of pending runs."""
        x = np.vstack([self.x, np.atleast_2d(x_new)])
        y = np.concatenate([self.y * self.y_std + self.y_mean, np.atleast_1d(y_new)])
        return self._sibling(x, (y - self.y_mean) / self.y_std, self.theta)


__all__ = ["GaussianProcess"]
