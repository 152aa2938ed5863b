"""Where guest code lives: a guest process's /proc/self/maps, read on the host."""

from __future__ import annotations

from pathlib import Path


class GuestMaps:
    """Guest address -> (mapped file, offset from the file's load base)."""

    def __init__(self, maps: str) -> None:
        self.entries: list[tuple[int, int, int, str]] = []  # (start, end, load base, path)
        bases: dict[str, int] = {}
        for line in maps.splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            offset, path = int(parts[2], 16), parts[5]
            bases.setdefault(path, start - offset)  # the first mapping of a file holds its ELF header
            self.entries.append((start, end, bases[path], path))

    def locate(self, addr: int) -> tuple[str, int]:
        """(guest path, offset from its load base); ("", addr) outside every mapped file."""
        for start, end, base, path in self.entries:
            if start <= addr < end:
                return path, addr - base
        return "", addr


def host_file(path: str, sysroot: Path) -> Path:
    """The host file of a guest path: itself where the guest saw a host path, else under the sysroot."""
    return Path(path) if Path(path).exists() else sysroot / path.lstrip("/")
