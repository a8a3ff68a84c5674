"""Search spaces: the public name experiment files import (``from hpo.space import Float``).

The definitions live in `hpo.core.space`.
"""

from hpo.core.space import Choice, Float, Int, Param, Space, as_space

__all__ = ["Choice", "Float", "Int", "Param", "Space", "as_space"]
