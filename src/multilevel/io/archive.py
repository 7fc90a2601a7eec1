"""The saved-fit container: a zip of JSON and NumPy ``.npy`` members with a manifest.

``manifest.json`` names the format (``"multilevel-fit"``), its version, the multilevel version
that wrote the file, the model kind, when it was written, and the SHA-256 of every other member.
Reading trusts nothing in the file: only members the manifest names are read, each is checked
against its checksum and a size cap, names must be plain relative paths, and arrays are read with
``allow_pickle=False`` -- a file from elsewhere can make loading fail, never run code.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from multilevel.errors import SavedFitError

FORMAT_NAME = "multilevel-fit"
# The newest format this version writes and reads; raise it when a change would make older
# readers misread a file (they then refuse it with an "upgrade multilevel" message).
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Caps against a crafted file: a member's uncompressed size, the whole archive's, the count.
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_MEMBERS = 100_000
MAX_MANIFEST_BYTES = 64 * 1024**2


def library_version() -> str:
    """The multilevel version recorded in files (the installed distribution's)."""
    try:
        return importlib.metadata.version("multilevel")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


@dataclass
class ArchiveWriter:
    """Members collected in memory, written with their manifest by :meth:`write`."""

    kind: str
    members: dict[str, bytes] = field(default_factory=dict)

    def add_json(self, name: str, value: Any) -> None:
        """A JSON member (strict JSON: no NaN or Infinity; see :mod:`multilevel.io.codec`)."""
        self._add(name, json.dumps(value, indent=1, allow_nan=False,
                                   sort_keys=False).encode("utf-8"))

    def add_array(self, name: str, array: np.ndarray) -> None:
        """A ``.npy`` member; object arrays are refused (they would need pickle)."""
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            raise SavedFitError(f"cannot save member {name!r}: an object array would need "
                                "pickle, which this format never uses")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        self._add(name, buf.getvalue())

    def _add(self, name: str, data: bytes) -> None:
        check_member_name(name)
        if name in self.members or name == MANIFEST:
            raise SavedFitError(f"member {name!r} written twice (a bug in multilevel's saving)")
        self.members[name] = data

    def manifest(self) -> dict[str, Any]:
        """The manifest of the members collected so far."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "multilevel_version": library_version(),
            "kind": self.kind,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "members": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                        for name, data in sorted(self.members.items())},
        }

    def write(self, path: Path) -> Path:
        """Write the zip (to a temporary name first, so a failure leaves no half file)."""
        manifest = json.dumps(self.manifest(), indent=1).encode("utf-8")
        tmp = path.with_name(path.name + ".partial")
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, manifest)
                for name, data in sorted(self.members.items()):
                    zf.writestr(name, data)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SavedFitError(f"cannot write the saved fit to {str(path)!r}: {exc}") from exc
        return path


def check_member_name(name: str) -> None:
    """A member name must be a plain relative POSIX path without ``..`` (no zip-slip)."""
    p = PurePosixPath(name)
    if (not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name
            or p.is_absolute() or any(part in ("", ".", "..") for part in name.split("/"))):
        raise SavedFitError(f"the saved fit names a member {name!r} that is not a plain "
                            "relative path; the file is damaged or was not written by "
                            "multilevel, and is not read")


class ArchiveReader:
    """A saved fit opened and checked: format, version, member names, sizes and checksums."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SavedFitError(f"no saved fit at {str(self.path)!r}: the file does not exist")
        if not self.path.is_file():
            raise SavedFitError(f"{str(self.path)!r} is not a file; give the path of a saved "
                                "fit written by fit.save()")
        try:
            self._zip = zipfile.ZipFile(self.path, "r")
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError,
                EOFError) as exc:
            raise SavedFitError(f"{str(self.path)!r} is not a saved multilevel fit (not a zip "
                                f"archive: {exc}); write one with fit.save(path)") from exc
        self._cache: dict[str, bytes] = {}
        try:
            self.manifest = self._read_manifest()
        except BaseException:
            self._zip.close()
            raise

    def close(self) -> None:
        """Close the underlying zip file."""
        self._zip.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def kind(self) -> str:
        """The model kind the manifest records."""
        return str(self.manifest["kind"])

    @property
    def written_by(self) -> str:
        """The multilevel version that wrote the file."""
        return str(self.manifest.get("multilevel_version", "unknown"))

    def _raw(self, name: str, limit: int) -> bytes:
        try:
            info = self._zip.getinfo(name)
        except KeyError as exc:
            raise SavedFitError(f"the saved fit {str(self.path)!r} has no member {name!r} "
                                "although its manifest names it: the file is damaged") from exc
        if info.file_size > limit:
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} is {info.file_size} "
                                f"bytes, more than this reader accepts ({limit})")
        try:
            with self._zip.open(info) as fh:
                data = fh.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
                RuntimeError, ValueError) as exc:
            # a damaged entry (bad CRC, broken deflate stream, unknown compression,
            # encryption): never read further
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} cannot be read "
                                f"({type(exc).__name__}: {exc}): the file is damaged") from exc
        if len(data) > limit:
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} is larger than its zip "
                                "entry says: the file is damaged")
        return data

    def _read_manifest(self) -> dict[str, Any]:
        where = str(self.path)
        if MANIFEST not in self._zip.namelist():
            raise SavedFitError(f"{where!r} is a zip archive but not a saved multilevel fit "
                                f"(no {MANIFEST}); write one with fit.save(path)")
        try:
            manifest = json.loads(self._raw(MANIFEST, MAX_MANIFEST_BYTES).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SavedFitError(f"the {MANIFEST} of {where!r} is not valid JSON: the file is "
                                "damaged") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            got = manifest.get("format") if isinstance(manifest, dict) else None
            raise SavedFitError(f"{where!r} is not a saved multilevel fit (its manifest's "
                                f"format is {got!r}, not {FORMAT_NAME!r})")
        version = manifest.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SavedFitError(f"the manifest of {where!r} has no valid format_version "
                                f"(got {version!r}): the file is damaged")
        if version > FORMAT_VERSION:
            raise SavedFitError(
                f"{where!r} was written by multilevel {manifest.get('multilevel_version', '?')} "
                f"(format {version}); this version ({library_version()}) reads format <= "
                f"{FORMAT_VERSION}: upgrade multilevel")
        members = manifest.get("members")
        if not isinstance(members, dict) or not isinstance(manifest.get("kind"), str):
            raise SavedFitError(f"the manifest of {where!r} lacks its members or kind: the "
                                "file is damaged")
        if len(members) > MAX_MEMBERS:
            raise SavedFitError(f"{where!r} names {len(members)} members, more than this "
                                f"reader accepts ({MAX_MEMBERS})")
        total = 0
        for name, entry in members.items():
            check_member_name(name)
            if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                    or not isinstance(entry.get("bytes"), int)):
                raise SavedFitError(f"the manifest entry of member {name!r} in {where!r} is "
                                    "malformed: the file is damaged")
            total += entry["bytes"]
        if total > MAX_TOTAL_BYTES:
            raise SavedFitError(f"{where!r} holds {total} bytes of members, more than this "
                                f"reader accepts ({MAX_TOTAL_BYTES})")
        return manifest

    def has(self, name: str) -> bool:
        """Whether the manifest names the member."""
        return name in self.manifest["members"]

    def member(self, name: str) -> bytes:
        """A member's bytes, checked against the manifest's size and SHA-256."""
        if name in self._cache:
            return self._cache[name]
        entry = self.manifest["members"].get(name)
        if entry is None:
            raise SavedFitError(f"the saved fit {str(self.path)!r} has no member {name!r} "
                                "(written by another kind or version?)")
        declared = int(entry["bytes"])
        if declared > MAX_MEMBER_BYTES:
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} is {declared} bytes, "
                                f"more than this reader accepts ({MAX_MEMBER_BYTES})")
        changed = SavedFitError(f"member {name!r} of {str(self.path)!r} does not match its "
                                "checksum in the manifest: the file was changed or damaged "
                                "after it was written, and is not loaded")
        try:
            actual = self._zip.getinfo(name).file_size
        except KeyError:
            actual = declared  # _raw names the missing member
        if actual != declared:
            raise changed
        data = self._raw(name, declared)
        if len(data) != declared or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise changed
        self._cache[name] = data
        return data

    def json(self, name: str) -> Any:
        """A JSON member, parsed."""
        try:
            return json.loads(self.member(name).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} is not valid JSON: "
                                "the file is damaged") from exc

    def array(self, name: str) -> np.ndarray:
        """A ``.npy`` member, read without pickle."""
        try:
            return np.load(io.BytesIO(self.member(name)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise SavedFitError(f"member {name!r} of {str(self.path)!r} is not a NumPy array "
                                f"this reader accepts ({exc})") from exc
