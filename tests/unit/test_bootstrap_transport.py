"""registry/bootstrap.py's shared transport: every storage client of the app goes through it."""

from __future__ import annotations

from azure.storage.blob._shared.constants import DATA_BLOCK_SIZE

from registry.bootstrap import STORAGE_DATA_BLOCK_SIZE, shared_transport


def test_responses_are_read_in_the_blocks_the_storage_sdk_gives_its_own_transports() -> None:
    # Handed a transport, the SDK does not set its block size: left at azure-core's 4 KiB, a
    # download of 8 MiB took 2,048 reads, and the worker hashed its copies at two thirds the speed.
    assert STORAGE_DATA_BLOCK_SIZE == DATA_BLOCK_SIZE
    assert shared_transport().connection_config.data_block_size == STORAGE_DATA_BLOCK_SIZE
