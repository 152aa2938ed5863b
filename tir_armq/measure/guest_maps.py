"""Where guest code lives and what it is called: a guest process's /proc/self/maps and the ELF symbol
tables of its files, read on the host."""

from __future__ import annotations

import bisect
import re
import shutil
import subprocess
from pathlib import Path

_TVM_SYMBOL = re.compile(r"^(?:__tvm_ffi_)?(.+?)(?:_compute_)?$")


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


class Symbolizer:
    """Names guest code addresses: the mapped file from /proc/self/maps, then its ELF symbol table."""

    def __init__(self, maps: str, sysroot: Path) -> None:
        self.sysroot = sysroot
        self._maps = GuestMaps(maps)
        self._symbols: dict[str, tuple[list[int], list[str]]] = {}

    def _table(self, path: str) -> tuple[list[int], list[str]]:
        if path not in self._symbols:
            host = host_file(path, self.sysroot)
            nm = shutil.which("aarch64-linux-gnu-nm") or "nm"
            rows = []
            for dynamic in ([], ["-D"]):  # a stripped library keeps its exported symbols only
                out = subprocess.run([nm, "--defined-only", "-n", "-C", *dynamic, str(host)],
                                     capture_output=True, text=True)
                for line in out.stdout.splitlines():
                    parts = line.split(" ", 2)
                    if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("$"):
                        rows.append((int(parts[0], 16), parts[2]))
                if rows:
                    break
            self._symbols[path] = ([a for a, _ in rows], [n for _, n in rows])
        return self._symbols[path]

    def __call__(self, addr: int) -> tuple[str, str]:
        """(file name, symbol) of a guest address; the symbol is "?" where the file has none. TVM's
        `<name>_compute_` and `__tvm_ffi_<name>` are both named `<name>`: the kernel's global symbol."""
        path, offset = self._maps.locate(addr)
        if not path:
            return "?", "?"
        addrs, names = self._table(path)
        i = bisect.bisect_right(addrs, offset) - 1
        symbol = names[i] if i >= 0 else "?"
        return Path(path).name, _TVM_SYMBOL.sub(r"\1", symbol)
