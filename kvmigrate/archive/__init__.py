"""A whole vault as an offline folder: one file per object's backup blob plus ``manifest.json``.

``reader.py`` opens one safely (restore's source end), ``writer.py`` writes one (backup's target end), ``manifest.py``
holds the format and the rules a manifest must keep.
"""

from kvmigrate.archive.manifest import Entry
from kvmigrate.archive.reader import Archive, ArchiveSource, is_archive_reference
from kvmigrate.archive.writer import ArchiveWriter

__all__ = ["Archive", "ArchiveSource", "ArchiveWriter", "Entry", "is_archive_reference"]
