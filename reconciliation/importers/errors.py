"""Errors of an import: each malformed line with where and what, and the rejection that carries them all."""

from __future__ import annotations

from dataclasses import dataclass

# A file that is wrong everywhere must not exhaust memory with its own error list.
MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class LineError:
    """What is wrong with one place of a file: `line` is 1-based (None for the whole file)."""

    line: int | None
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


class ImportRejectedError(ValueError):
    """The file cannot be imported at all; `errors` lists every problem found, in file order."""

    def __init__(self, source: str, errors: tuple[LineError, ...], omitted: int = 0) -> None:
        self.source = source
        self.errors = errors
        self.omitted = omitted
        listed = "\n".join(f"  {error}" for error in errors[:20])
        more = len(errors) - 20 + omitted
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source}: {len(errors) + omitted} error(s), nothing imported\n{listed}{tail}")


class ErrorList:
    """Collects line errors while a file streams, keeping the first MAX_REPORTED_ERRORS of them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._errors: list[LineError] = []
        self._omitted = 0

    def add(self, line: int | None, column: str | None, problem: str) -> None:
        if len(self._errors) < MAX_REPORTED_ERRORS:
            self._errors.append(LineError(line, column, problem))
        else:
            self._omitted += 1

    def __bool__(self) -> bool:
        return bool(self._errors)

    def reject(self, line: int | None, column: str | None, problem: str) -> ImportRejectedError:
        """A fatal problem: the rejection with everything found so far plus this one."""
        self.add(line, column, problem)
        return self.rejection()

    def rejection(self) -> ImportRejectedError:
        return ImportRejectedError(self.source, tuple(self._errors), self._omitted)

    def raise_if_any(self) -> None:
        if self._errors:
            raise self.rejection()
