"""The learned name and location detector as a Presidio recognizer (PERSON and LOCATION).

It runs :class:`feedbackflow.privacy.detector.NameDetector` (the ``detector`` stage's model, trained on
human-labelled tweets and posts) beside spaCy's NER and the rules. Presidio asks a recognizer for one text at a
time; :meth:`LearnedNameRecognizer.prime` lets :func:`feedbackflow.privacy.engine.analyze_texts` run the model over
a whole batch first, which is several times faster on a CPU than one text at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from feedbackflow.privacy.detector import ENTITIES, NameDetector, Span

#: The score of every span the detector keeps: it already passed the detector's own threshold (chosen on dev), and
#: spaCy's NER findings score the same.
DETECTOR_SCORE = 0.85
NAME = "LearnedNameRecognizer"


class LearnedNameRecognizer(EntityRecognizer):
    """PERSON and LOCATION spans found by the learned detector."""

    def __init__(self, detector: NameDetector, supported_language: str = "en") -> None:
        self.detector = detector
        self._primed: dict[str, list[Span]] = {}
        super().__init__(supported_entities=list(ENTITIES), name=NAME, supported_language=supported_language)

    def load(self) -> None:
        """Nothing to load: the model is loaded by :meth:`NameDetector.load`."""

    def prime(self, texts: Sequence[str]) -> None:
        """Run the model over ``texts`` in batches now; :meth:`analyze` then reads their spans from memory."""
        self._primed = dict(zip(texts, self.detector.spans(texts), strict=True))

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        spans = self._primed.pop(text, None)
        if spans is None:
            spans = self.detector.spans([text])[0]
        return [
            RecognizerResult(
                span.entity,
                span.start,
                span.end,
                DETECTOR_SCORE,
                analysis_explanation=AnalysisExplanation(
                    recognizer=NAME, original_score=span.score, textual_explanation="learned detector"
                ),
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: NAME,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                },
            )
            for span in spans
            if span.entity in entities
        ]
