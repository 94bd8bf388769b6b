"""Sources stages; each module registers its stages with @stage."""
