"""ridgerider: Ridge Rider (Parker-Holder et al., NeurIPS 2020) as a library, a CLI and a service.

Ridge Rider finds qualitatively different solutions of a smooth loss by following eigenvectors of
the Hessian with negative eigenvalue ("ridges") from a maximally invariant saddle, branching again
whenever a ridge ends. The pure engine lives in :mod:`ridgerider.core`; the built-in problems in
:mod:`ridgerider.problems`.
"""

__version__ = "0.1.0"
