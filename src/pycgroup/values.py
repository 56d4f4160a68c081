"""How a value is told apart from the absence of one.

``read()`` and :class:`pycgroup.Limits` return an ``int`` for a value, ``UNLIMITED``
(``math.inf``, a float that compares above every int) for a limit the kernel reports as
"max" (or ``-1``, or v1's page-rounded ``LONG_MAX``), and ``None`` for a value that is
unavailable here (``CGroup.explain()`` says why). Samples keep int64 columns with their own
markers (:data:`pycgroup.formats.MISSING`, :data:`pycgroup.formats.UNLIMITED`);
``Samples.as_float`` maps them to NaN and ``math.inf``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pycgroup.formats import MISSING, VALUE_CEIL
from pycgroup.formats import UNLIMITED as UNLIMITED_ROW

if TYPE_CHECKING:
    import numpy as np

#: A limit that limits nothing: ``math.inf``.
UNLIMITED: float = math.inf

def from_row(value: int | np.int64) -> int | float | None:
    """Returns the Python value of an int64 row value: None for MISSING, UNLIMITED for
    the row's unlimited marker, else the int."""
    if value == MISSING:
        return None
    if value == UNLIMITED_ROW:
        return UNLIMITED
    return int(value)


def to_row(value: int | float | None) -> int:
    """Returns the int64 row value of a Python value: MISSING for None, the row's
    unlimited marker for UNLIMITED, else the int (saturating as file values do)."""
    if value is None:
        return MISSING
    if math.isinf(value):
        return UNLIMITED_ROW
    return min(int(value), VALUE_CEIL)


def to_json(value: Any) -> Any:
    """Returns value with every UNLIMITED replaced by "unlimited" (JSON has no infinity),
    through dicts, lists and tuples."""
    if isinstance(value, float) and math.isinf(value):
        return "unlimited"
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value
