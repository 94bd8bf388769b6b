"""Sinks stages; each module registers its stages with @stage."""
