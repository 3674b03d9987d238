"""The Bradley-Terry model fitted by maximum likelihood, many win matrices at once.

``P(i beats j) = 1 / (1 + exp(-(theta_i - theta_j)))``: each model's strength ``theta`` is on
the log-odds scale, fixed up to a shift, so the strengths returned have mean 0. A tie counts
half a win to each side (as FastChat's arena analysis does), so the win matrix holds halves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmcompare.stats._common import scipy_stats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["bradley_terry_exists", "bradley_terry_fit"]

# Where the maximum-likelihood estimate does not exist (a model won, or lost, every battle it
# had; or two groups of models never met), this ridge on the strengths keeps them finite. It is
# applied only to those fits: where the estimate exists, it is returned unpenalised.
_RIDGE = 1e-3


def bradley_terry_fit(wins: ArrayLike) -> NDArray[np.float64]:
    """Bradley-Terry strengths (log-odds, mean 0) from one win matrix, or many at once.

    ``wins[i, j]`` is how many times model ``i`` beat model ``j``, ties counted half to each.
    The fit maximises ``sum_ij wins[i, j] * log(sigmoid(theta_i - theta_j))`` with
    ``scipy.optimize.minimize`` (L-BFGS-B, analytic gradient); a stack of matrices (the
    resamples of a bootstrap) is fitted in one call, since the sum of independent fits is
    minimised by each one's own minimum.

    The estimate exists when the models cannot be split into two groups one of which never
    scored (a win or a tie) against the other. Where it does not, a ridge of
    ``0.001 * sum(theta ** 2)`` keeps that fit finite: such a model's strength is then a large
    number standing for "not bounded by the data".

    Example:
        >>> import numpy as np
        >>> theta = bradley_terry_fit([[0, 3], [1, 0]])  # 3 wins to 1
        >>> round(float(theta[0] - theta[1]), 4) == round(float(np.log(3)), 4)
        True

    Args:
        wins: A square matrix ``(m, m)``, or a stack ``(r, m, m)``; non-negative, finite.

    Returns:
        The strengths: shape ``(m,)`` for one matrix, ``(r, m)`` for a stack; each row has
        mean 0.

    Raises:
        ValueError: For a matrix that is not square, has fewer than two models, or holds a
            negative or non-finite count.
    """
    scipy_stats()  # numpy and scipy.optimize come with scipy: fail with the install hint
    import numpy as np
    from scipy import optimize  # type: ignore[import-untyped]

    w = np.asarray(wins, dtype=np.float64)
    single = w.ndim == 2
    if single:
        w = w[None]
    if w.ndim != 3 or w.shape[1] != w.shape[2] or w.shape[1] < 2:
        raise ValueError(f"wins must be a square matrix of 2 or more models, got shape {w.shape}")
    if not bool(np.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("wins must hold finite, non-negative counts")
    r, m, _ = w.shape
    ridge = np.where(_estimate_exists(w), 0.0, _RIDGE)[:, None]

    def loss(flat: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        theta = flat.reshape(r, m)
        d = theta[:, :, None] - theta[:, None, :]
        # -log(sigmoid(d)) = log(1 + exp(-d)), computed without overflow.
        value = float((w * np.logaddexp(0.0, -d)).sum() + (ridge * theta * theta).sum())
        g = w * _sigmoid(-d)  # d/dd of the loss term, negated
        grad = g.sum(axis=1) - g.sum(axis=2) + 2.0 * ridge * theta
        return value, grad.ravel()

    found: Any = optimize.minimize(
        loss,
        np.zeros(r * m),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20_000, "gtol": 1e-10, "ftol": 1e-15},
    )
    theta = np.asarray(found.x, dtype=np.float64).reshape(r, m)
    centred: NDArray[np.float64] = theta - theta.mean(axis=1, keepdims=True)
    return centred[0] if single else centred


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    import numpy as np

    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def bradley_terry_exists(wins: ArrayLike) -> bool:
    """Whether the maximum-likelihood estimate of one win matrix exists (is finite).

    It does when the models cannot be split into two groups one of which never scored (a win
    or a tie) against the other; otherwise :func:`bradley_terry_fit` is held finite by its
    ridge, and a score stands for "not bounded by the data".

    Example:
        >>> bradley_terry_exists([[0, 3], [1, 0]]), bradley_terry_exists([[0, 3], [0, 0]])
        (True, False)
    """
    scipy_stats()
    import numpy as np

    w = np.asarray(wins, dtype=np.float64)
    return bool(_estimate_exists(w[None])[0])


def _estimate_exists(w: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per matrix: whether every model reaches every other by "scored against" steps.

    The maximum-likelihood estimate exists exactly when that graph is strongly connected
    (Zermelo 1929; Ford 1957): then no group of models is unbounded above the rest.
    """
    import numpy as np

    m = w.shape[1]
    reach = (w > 0) | np.eye(m, dtype=bool)[None]
    steps = 1
    while steps < m:  # paths of length up to m - 1, doubling each time
        reach = (reach.astype(np.float64) @ reach.astype(np.float64)) > 0
        steps *= 2
    exists: NDArray[np.bool_] = np.asarray(reach.all(axis=(1, 2)), dtype=bool)
    return exists
