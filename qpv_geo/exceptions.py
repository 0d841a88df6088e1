"""One hierarchy for every error a user can cause or fix.

A failure for one address or one row is *data* (a status and a reason on its row), not an
exception. Exceptions are for what stops a whole operation; only ``cli.py`` and the web layer
turn them into messages, and every message says what to do.
"""

from __future__ import annotations

from typing import Any


class QpvGeoError(Exception):
    """Root of every qpv-geo error meant for a user (never a bug)."""

    #: One sentence saying how to fix the problem; the CLI prints it after the message.
    hint: str | None = None
    #: The same advice for a web page, when the CLI's names a command (see
    #: :mod:`qpv_geo.geocoding.messages`); None: the web shows :attr:`hint`.
    hint_web: str | None = None

    def __init__(self, message: str, *, hint: Any = None) -> None:
        super().__init__(message)
        if hint is not None:
            # a qpv_geo.geocoding.messages.Conseil carries both wordings
            self.hint = str(getattr(hint, "cli", hint))
            if getattr(hint, "web", None):
                self.hint_web = hint.web

    def __str__(self) -> str:
        return self.args[0] if self.args else self.__class__.__name__


class ReferenceDataError(QpvGeoError):
    """A reference layer is missing, corrupted (checksum) or does not have the expected schema."""


class CoordinateError(QpvGeoError, ValueError):
    """Coordinates that cannot describe a place in France (out of range, swapped, wrong CRS)."""


class GeocodingError(QpvGeoError):
    """Base class of geocoding failures that stop a whole operation."""


class GeocoderUnavailable(GeocodingError, OSError):
    """The geocoding service cannot be reached or answered with a server error."""


class GeocoderRateLimited(GeocodingError):
    """The geocoding service asked us to slow down (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None, hint: Any = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class GeocoderQueryError(GeocodingError, ValueError):
    """The geocoding service rejected the query itself (HTTP 400: empty, too long, …)."""


class GeocoderNotConfigured(GeocodingError):
    """No geocoder is available (e.g. no address file installed for the local geocoder)."""


class InputFileError(QpvGeoError, ValueError):
    """A user file cannot be read: format, encoding, missing columns. Says which row/column."""


class InputTooLargeError(InputFileError):
    """A user file beyond the reading limits (rows, cells, uncompressed size, zip bomb)."""


class UnreadableInputError(InputFileError):
    """A user file whose content cannot be parsed (broken or hostile XML, …)."""


class OperationCancelled(QpvGeoError):
    """The work was stopped because its requester left (web client disconnected)."""


class DaskError(QpvGeoError):
    """The distributed engine (``--moteur dask``) cannot run: missing packages, unreachable
    scheduler."""


class SettingsError(QpvGeoError, ValueError):
    """An option or a ``QPV_GEO_*`` variable with a value that is not allowed (NaN, negative…)."""


class DownloadError(QpvGeoError, OSError):
    """An official file could not be downloaded or did not match its expected checksum."""


class RegistreError(QpvGeoError):
    """The instruction register refuses an operation (unknown site, missing reason, …)."""


__all__ = [
    "CoordinateError",
    "DaskError",
    "DownloadError",
    "GeocoderNotConfigured",
    "GeocoderQueryError",
    "GeocoderRateLimited",
    "GeocoderUnavailable",
    "GeocodingError",
    "InputFileError",
    "InputTooLargeError",
    "OperationCancelled",
    "QpvGeoError",
    "ReferenceDataError",
    "RegistreError",
    "SettingsError",
    "UnreadableInputError",
]
