"""Demo data: realistic nightly feedback batches generated from a labelled corpus."""
