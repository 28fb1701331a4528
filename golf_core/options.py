"""Base class for every plugin's options model."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """A plugin's options: a pydantic model that rejects unknown keys.

    Subclass it in your plugin, give every field a default and a ``Field(description=...)``;
    the recipe table ``[options.<plugin>]`` is validated against it alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class NoOptions(Options):
    """Options model for a plugin that takes none."""
