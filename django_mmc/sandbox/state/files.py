"""Uploaded files, which outbound and inbound messages carry."""

from __future__ import annotations

import itertools
from typing import Any

from ...testing import format_timestamp
from .base import PlatformBase
from .errors import not_found
from .records import StoredFile


class Files(PlatformBase):
    """Store, describe and hand back uploaded files."""

    def _setup(self) -> None:
        super()._setup()
        self._file_ids = itertools.count(9)

    def _reset(self) -> None:
        super()._reset()
        self.files: dict[str, StoredFile] = {}

    def _render_file(self, f: StoredFile) -> dict[str, Any]:
        return {
            "type": self.wire.type_files,
            "id": f.id,
            "attributes": {"name": f.name, "contentType": f.content_type, "size": len(f.content)},
        }

    def create_file(
        self, name: str, content_type: str, content: bytes, key: str | None = None
    ) -> dict[str, Any]:
        """Store one file; returns its resource object."""
        with self.lock:
            stored = StoredFile(
                str(next(self._file_ids)), name, content_type, content, format_timestamp(), key
            )
            self.files[stored.id] = stored
            return self._render_file(stored)

    def file_resource(self, file_id: str) -> dict[str, Any]:
        """One file's resource object, or 404."""
        with self.lock:
            stored = self.files.get(file_id)
            if stored is None:
                raise not_found(f"File {file_id!r} does not exist.")
            return self._render_file(stored)

    def file_content(self, file_id: str) -> StoredFile | None:
        """The stored file itself (its bytes too), or None."""
        with self.lock:
            return self.files.get(file_id)
