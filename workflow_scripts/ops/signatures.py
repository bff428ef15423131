"""Stored signatures for the functions Snakemake calls once or more per job of a plan.

Snakemake passes a param, input or resource function only the arguments its signature names, and it looks
the signature up with `inspect.signature` each time: twice per function per job (`get_function_params`,
~25 us with `inspect`). At 400 coins (32,000 jobs, ~10 functions each) that was 8-9 % of the dry run, and
~7 % once our own functions were presigned (docs/SCALE.md, "The 400-coin plan"). Two stores avoid it:

- `presigned(fn)`: our own param, input and resource functions carry their signature (PEP 362
  `__signature__`), so `inspect` finds it without reading the code object.
- `store_resource_signature()`: Snakemake evaluates every resource of every job, a constant one too, through
  the bound method `Resource.evaluate`. Its parameters are stored with Snakemake's own
  `overwrite_function_params`, the attribute its `ioutils` wrappers set for the same lookup, so the lookup
  returns them without `inspect`. The stored mapping is the one `inspect` gives for the bound method, so
  Snakemake passes exactly the same arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable


def presigned(fn: Callable) -> Callable:
    """`fn` with its signature stored (PEP 362 `__signature__`): ~4 us per lookup instead of ~30 us."""
    fn.__signature__ = inspect.signature(fn)
    return fn


def store_resource_signature() -> bool:
    """Store the parameters of Snakemake's `Resource.evaluate` where `get_function_params` reads them first.
    Returns False, changing nothing, when this Snakemake lacks either name (the plan is then only slower)."""
    try:
        from snakemake.common import FUNC_OVERWRITE_PARAMS_ATTR, overwrite_function_params
        from snakemake.resources import Resource
    except ImportError:
        return False
    evaluate = getattr(Resource, "evaluate", None)
    if not inspect.isfunction(evaluate):
        return False
    if not hasattr(evaluate, FUNC_OVERWRITE_PARAMS_ATTR):
        # a bound method reads its function's attributes: one store serves every Resource
        overwrite_function_params(evaluate, inspect.signature(Resource("probe", 1).evaluate).parameters)
    return True
