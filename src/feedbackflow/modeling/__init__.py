"""Model loading, fine-tuning and evaluation."""
