"""The registry of tutorial results a spec may cite: ``references/*.yaml``, one entry per id.

An entry holds its id, a title, the public sources (book, edition, section and, where there is one, a URL),
the values the source printed, and how this harness reads them into references. A spec's ``source:`` names an
entry. Entries are read from ``references/`` beside the spec (its folder, or its folder's parent) and from this
project's own ``references/``; an id defined twice is an error, so a user's entries extend the chapter's.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from harness.schema import REF_ID, SpecError, Strict, read_yaml, validation_error

PROJECT_REFERENCES = Path(__file__).resolve().parents[2] / "references"


class Citation(Strict):
    """Where a result was printed: a public work, its edition and section, and its address where it has one."""

    book: str = Field(min_length=1)
    edition: str = Field(min_length=1)
    section: str = Field(min_length=1)
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _web(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError("url must be an http(s) address")
        return url


class Entry(Strict):
    """One tutorial result."""

    id: str = Field(pattern=REF_ID)
    title: str = Field(min_length=1)
    sources: list[Citation] = Field(min_length=1)
    printed: str = Field(min_length=1, description="what the source printed")
    reading: str = Field(min_length=1, description="how the claims are read into references")


def directories(spec_path: Path) -> tuple[Path, ...]:
    """Where the entries a spec may cite are read from, nearest first."""
    here = spec_path.resolve().parent
    found = [d for d in (here / "references", here.parent / "references", PROJECT_REFERENCES) if d.is_dir()]
    return tuple(dict.fromkeys(found))


def load_file(path: Path) -> list[Entry]:
    data = read_yaml(path)
    if not isinstance(data, list):
        raise SpecError(f"{path}: (top level): a references file is a list of entries, got {type(data).__name__}")
    entries = []
    for i, item in enumerate(data):
        try:
            entries.append(Entry.model_validate(item))
        except ValidationError as err:
            raise validation_error(path, err, (i,)) from None
    return entries


FileKey = tuple[Path, int | None, int | None]  # a file, its mtime_ns and size (None where it cannot be stat'ed)


def _file_key(path: Path) -> FileKey:
    try:
        st = path.stat()
    except OSError:  # gone since the glob: load_file says so, and an error is never cached
        return path, None, None
    return path, st.st_mtime_ns, st.st_size


def registry(dirs: tuple[Path, ...]) -> dict[str, tuple[Entry, Path]]:
    """Every entry in ``dirs`` by id, with the file that defines it.

    Read once per process while no file changes: the result is cached by directory and by each file's path,
    modification time and size, so a spec batch does not re-read and re-validate the registry for every spec.
    """
    files = tuple((folder, tuple(_file_key(path) for path in sorted(folder.glob("*.yaml")))) for folder in dirs)
    return dict(_registry(files))


@functools.cache
def _registry(files: tuple[tuple[Path, tuple[FileKey, ...]], ...]) -> dict[str, tuple[Entry, Path]]:
    out: dict[str, tuple[Entry, Path]] = {}
    for _folder, keys in files:
        for path, _mtime_ns, _size in keys:
            for i, entry in enumerate(load_file(path)):
                if entry.id in out:
                    raise SpecError(f"{path}: [{i}].id: {entry.id!r} is already defined in {out[entry.id][1]}")
                out[entry.id] = (entry, path)
    return out


def for_spec(spec_path: Path) -> dict[str, tuple[Entry, Path]]:
    return registry(directories(spec_path))
