"""DVC-backed storage and the stage runner."""
