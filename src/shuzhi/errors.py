"""Precise exception types, so callers can tell data problems from retryable failures."""


class ShuzhiError(Exception):
    """Base class of shuzhi's own errors."""


class SetupError(ShuzhiError):
    """The machine is not set up (missing jars, keys, ...): the message names the command to run."""


class UsageError(ShuzhiError, ValueError):
    """A caller asked for something that does not exist (an unknown source, table, role, a date that
    is not a date): answered before any work starts and never recorded as data."""


class DeliveryRejected(ShuzhiError):
    """A delivery is rejected as a whole (SPEC: manifest faults). Not retryable until re-delivered.

    ``code`` is a stable reason code, ``str(exc)`` names the delivery and file.
    """

    def __init__(self, code: str, message: str):
        message = " ".join(message.split())          # one line, whatever a library's text held
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class ConservationError(ShuzhiError):
    """Records were neither loaded nor quarantined: manifest rows != bronze + quarantine."""


class GateFailed(ShuzhiError):
    """A critical expectation failed; downstream must not run."""


class DestructionNotProven(ShuzhiError):
    """The scan after a destruction found a destroyed person's data under the lake root."""


class JobFailed(ShuzhiError):
    """A job run through ``spark-submit`` exited with an error of its own (not one of the data
    faults above, which keep their type across the process boundary)."""


# exit codes of a job's entry point (``jobs/<job>.py``) for the faults a caller acts on
EXIT_CODES = {DeliveryRejected: 3, GateFailed: 4, DestructionNotProven: 5, UsageError: 2}


class MoveNotVerified(ShuzhiError):
    """A move between tables (the tier stage's hot ↔ cold) does not hold every record it should
    in its target; the source was left untouched."""
