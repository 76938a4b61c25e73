"""The registry's words, listed once: validation, records, listing filters and OpenAPI all use these."""

from __future__ import annotations

from enum import StrEnum


class ModelType(StrEnum):
    """A model's architecture (DeepDev's model_type)."""

    ENCODER = "ENCODER"
    DECODER = "DECODER"
    SEQ2SEQ = "SEQ2SEQ"


class DataType(StrEnum):
    """What a model takes or produces (DeepDev's model_data_type)."""

    SOURCE_CODE = "SOURCE_CODE"
    NATURAL_LANGUAGE = "NATURAL_LANGUAGE"
    CLASS_LABEL = "CLASS_LABEL"
    OTHER = "OTHER"


# The values, in order, for choices (the CLI's options, the catalog's filters and form).
MODEL_TYPES = tuple(member.value for member in ModelType)
DATA_TYPES = tuple(member.value for member in DataType)

# Data types that are written in a language, so a model that takes or produces them names it.
LANGUAGE_TYPES = frozenset({DataType.SOURCE_CODE, DataType.NATURAL_LANGUAGE})


class State(StrEnum):
    """A registration's state. DELETING is a tombstone: the API answers as for a model that does
    not exist while the registry finishes removing what it stored."""

    IN_PROGRESS = "InProgress"
    FINISHED = "Finished"
    FAILED = "Failed"
    DELETING = "Deleting"


class FileState(StrEnum):
    """A file's phase: its bytes are copied, then the registry's copy is hashed, then it is done."""

    PENDING = "Pending"
    COPYING = "Copying"
    HASHING = "Hashing"
    FINISHED = "Finished"
    FAILED = "Failed"


# A downloaded model directory: the files, plus model-signing's default signature name and the
# registry's manifest beside them (both in the signature's ignored paths).
SIGNATURE_FILE = "model.sig"
MANIFEST_FILE = "registry-manifest.json"
IGNORED_PATHS = (SIGNATURE_FILE, MANIFEST_FILE)
# model-signing's CLI ignores these by default (--ignore-git-paths): a file by such a name could
# never verify with it.
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
