"""The core: graph IR, op table, autodiff, lowering, kernels — what computes.

It knows nothing of training, pictures, notebooks or frameworks; every layer above
runs a graph only through :mod:`nbbp.core.engine`.
"""
