"""feedbackflow: a governed retraining pipeline for text classifiers."""

__version__ = "0.1.0"
