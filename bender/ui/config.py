"""What `bender ui` was started with, as one dataclass (the CLI fills it; tests build it directly)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class UIConfig:
    """Settings for one UI server.

    `models` are files or training-run folders named on the command line ('default' is the embedded
    model); `models_dir` is scanned again whenever the picker refreshes, so models dropped into it
    appear without a restart. `work_dir` holds uploads and exports; by default a fresh temporary
    folder, so two servers never share files.
    """

    models: list[str] = field(default_factory=list)
    models_dir: Path | None = None
    device: str = "auto"
    work_dir: Path | None = None
    max_upload_mb: float = 1024.0
    cached_models: int = 3
    plane_size: int = 5  # the plane map is plane_size x plane_size thumbnails
    max_batch: int = 16  # requests from different users rendered together

    def __post_init__(self) -> None:
        if self.models_dir is not None:
            self.models_dir = Path(self.models_dir).expanduser()
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="bender-ui-"))
        self.work_dir = Path(self.work_dir).expanduser().resolve()

    @property
    def uploads_dir(self) -> Path:
        return self.work_dir / "uploads"

    @property
    def exports_dir(self) -> Path:
        return self.work_dir / "exports"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
