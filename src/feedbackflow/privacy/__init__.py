"""Detection and replacement of personal data (Presidio)."""
