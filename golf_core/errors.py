"""Errors golf reports to the user as one clear line (``golf: error: ...``) with a non-zero exit."""
from __future__ import annotations


class GolfError(Exception):
    """Base of every error caused by bad input; its message names the culprit in one line."""


class RecipeError(GolfError):
    """A recipe that cannot be parsed, resolved or validated."""


class PluginError(GolfError):
    """A plugin that is unknown, failed to import, conflicts, or breaks a hook contract."""


class DataError(GolfError):
    """Missing or inconsistent data (shards, datasets, manifests)."""


class ShardError(DataError):
    """A shard file whose header or size is wrong."""


class TokenizerError(DataError):
    """A tokenizer that is missing or does not match the recipe."""


class ArtifactError(GolfError):
    """An artifact that is truncated, corrupt, of an unknown version, or needs missing plugins."""


class LegalityError(GolfError):
    """An eval-time adapter that broke score-before-update or scored a target twice."""
