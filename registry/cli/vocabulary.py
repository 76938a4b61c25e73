"""The registry's words as the command line offers them, derived from registry.domain.vocabulary.

That module is the registry's one list (validation, records, listing filters and OpenAPI use it
too) and imports nothing beyond the standard library, so `pip install .[cli]` can import it.
"""

from __future__ import annotations

from registry.domain.vocabulary import DataType, ModelType

MODEL_TYPES = tuple(member.value for member in ModelType)
DATA_TYPES = tuple(member.value for member in DataType)
