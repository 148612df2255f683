"""The four search spaces (SMALL, LAYER, MEDIUM, LARGE), pure Python and numpy.

``get_search_space(name, model)`` builds one for a registered model name or an
:class:`~plm_nasbench.architecture.Architecture`.
"""

from __future__ import annotations

from ..architecture import Architecture, Head, get_architecture
from .base import Config, SearchSpace
from .large import LargeSpace
from .layer import LayerSpace
from .medium import MediumSpace
from .small import SmallSpace

SEARCH_SPACES: dict[str, type[SearchSpace]] = {
    "small": SmallSpace,
    "layer": LayerSpace,
    "medium": MediumSpace,
    "large": LargeSpace,
}


def get_search_space(name: str, model: str | Architecture = "minilm-l6-h384", task: str | None = None,
                     head: Head | None = None) -> SearchSpace:
    """Build search space ``name`` for ``model`` (a registered name or an Architecture).

    ``task`` (or ``head``) picks the prediction head counted in parameter numbers when ``model`` is a
    name; an Architecture already carries its head.
    """
    try:
        cls = SEARCH_SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known spaces: {', '.join(SEARCH_SPACES)}") from None
    if isinstance(model, Architecture):
        if task is not None or head is not None:
            raise ValueError("task/head apply to a model name; an Architecture already carries its head")
        return cls(model)
    return cls(get_architecture(model, task=task, head=head))


__all__ = ["SEARCH_SPACES", "Config", "LargeSpace", "LayerSpace", "MediumSpace", "SearchSpace", "SmallSpace",
           "get_search_space"]
