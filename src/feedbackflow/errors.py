"""Errors a user can act on. The CLI maps each class to its own exit code."""


class FeedbackflowError(Exception):
    """Base class: the message says what went wrong and what to do."""

    exit_code = 1


class DataQualityError(FeedbackflowError):
    """A batch broke a data-quality rule badly enough to stop the run (names file, row or rule)."""

    exit_code = 65  # EX_DATAERR: retrying will not help


class PrivacyLeakError(FeedbackflowError):
    """Personal data survived anonymisation; nothing downstream may run (names row ids and entity types, no value)."""

    exit_code = 77  # EX_NOPERM: the data may not go further; a retry would find the same leak


class ConfigError(FeedbackflowError):
    """A setting or a referenced file is missing or invalid."""

    exit_code = 78  # EX_CONFIG


class SourceUnavailableError(FeedbackflowError):
    """A source (S3 endpoint, PostgreSQL server) stayed unreachable through the stage's own bounded retries."""

    exit_code = 75  # EX_TEMPFAIL: the orchestrator's retry may well succeed once the endpoint is back


class StateCorruptError(FeedbackflowError):
    """A state file the pipeline keeps (the raw manifest) is unreadable; the message names it and how to restore it."""

    exit_code = 74  # EX_IOERR: a retry would read the same broken file


class NotFoundError(FeedbackflowError):
    """A named thing (a registry version, a generation) does not exist; the message lists the ones that do."""

    exit_code = 66  # EX_NOINPUT: asking again will not make it exist
