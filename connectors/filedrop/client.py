"""A file-drop folder: `<folder>/<domain>/*.csv|*.jsonl`; taken files move to `<folder>/<domain>/done/`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


class DropFolder:
    def __init__(self, folder: str):
        self.root = Path(folder.removeprefix("file://"))

    def files(self, domain: str) -> list[Path]:
        where = self.root / domain
        if not where.is_dir():
            return []
        return sorted(p for p in where.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".jsonl"))

    @staticmethod
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def done(self, path: Path) -> None:
        target = path.parent / "done"
        target.mkdir(exist_ok=True)
        shutil.move(str(path), str(target / path.name))
