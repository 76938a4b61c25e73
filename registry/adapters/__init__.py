"""Adapters from the ports to Azure Storage (Tables, Queues, Blobs)."""
