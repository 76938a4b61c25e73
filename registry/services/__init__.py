"""Service layer: plain functions that take their collaborators (ports) as parameters."""
