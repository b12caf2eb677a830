"""One YAML loader for configuration and catalogue files: safe, and strict about repeated keys; and one way
to read those files: regular files only (a FIFO or /dev/zero never hangs the CLI), size-capped, UTF-8."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

# the C loader parses several times faster; fall back when PyYAML was built without libyaml
_BaseLoader: type[yaml.SafeLoader | yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that rejects a key repeated in one mapping (PyYAML silently keeps the last value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden: that is what merging is for
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key fails in the base class with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def load_yaml(text: str) -> Any:
    """Parse YAML text; raises yaml.YAMLError (a MarkedYAMLError carries the position)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a safe loader


MAX_FILE_BYTES = 16 * 1024 * 1024
"""Larger than any configuration or catalogue file amlfw ships or needs (the whole 2026 catalogue is ~200 kB)."""


class UnreadableFile(Exception):  # noqa: N818 - the reason is the message
    """A file amlfw refuses to read; str() is the reason ("no such file", "not a regular file", ...)."""


def read_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes. Raises UnreadableFile with a short reason."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UnreadableFile("cannot read file: no such file") from None
    except IsADirectoryError:
        raise UnreadableFile("cannot read file: is a directory") from None
    except PermissionError:
        raise UnreadableFile("cannot read file: permission denied") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise UnreadableFile("cannot read file: is a directory")
        raise UnreadableFile("cannot read file: not a regular file (a FIFO, device or socket)")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UnreadableFile(f"cannot read file: larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"cannot read file: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start})") from None
