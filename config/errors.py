"""Domain errors raised by services and selectors; the API, console and commands translate them."""


class DomainError(Exception):
    """Base class: a request that cannot be carried out as asked. `field` names the bad input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(DomainError):
    """The request contradicts what is stored: a taken `seq`, a finished session, a duplicate."""


class InvalidInput(DomainError):
    """Well-formed input that breaks a rule of the domain (a gap in `seq`, a bad cursor)."""


class Forbidden(DomainError):
    """The caller may not touch this record (operators are managed in the admin only)."""
