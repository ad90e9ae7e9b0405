"""The step log writer: Lockstep's format, byte-compatible with formats/step_log_writer.cc.

A sequence of independent zstd frames (level 3, content size and checksum). The first holds
the header line; each later one `records_per_frame` records, or fewer at flush() and close().
Lines are JSON with sorted keys and no spaces, as nlohmann::json::dump() writes them. Raw
generator states (bytes) are stored as their digest {"size", "xxh3_128"}.
"""
from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO, TypeVar

import xxhash
import zstandard

MAGIC = "LOCKSTEP-STEPLOG"
FORMAT_VERSION = 1

# A complete frame of a log as read_frames() returns it: its start and end offsets in the file
# and its records, JSON objects as json.loads() gives them.
Frame = tuple[int, int, list[dict[str, Any]]]

_Writer = TypeVar("_Writer", bound="StepLogWriter")


def float_bits(value: float) -> str:
    """'0x40117f02': the float32 bits of `value`, as loss_bits and grad_norm_bits hold them."""
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", value))[0]


def xxh3_128_hex(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def _plain(value: object) -> object:
    """The JSON value the C++ writer would store: bytes become their digest, NaN and infinities
    become null (as nlohmann::json dumps them), NumPy and torch scalars and arrays their
    Python values."""
    if isinstance(value, (bytes, bytearray)):
        return {"size": len(value), "xxh3_128": xxh3_128_hex(bytes(value))}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) is int for v in value):  # sample ids: nothing to convert, the common case
            return list(value)
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if type(value).__module__ in ("numpy", "torch") and hasattr(value, "tolist"):
        return _plain(value.tolist())  # np.int64(3) -> 3, a NumPy array or tensor -> its list
    return value


def dumps(value: object, plain: bool = False) -> str:
    """One line, as nlohmann::json::dump() writes it. `plain`: `value` holds JSON values only
    (no bytes, NaN, infinity, NumPy or torch values), so it is not walked first."""
    return json.dumps(value if plain else _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class StepLogWriter:
    def __init__(self, path: str, header: Mapping[str, object], records_per_frame: int = 16,
                 compression_level: int = 3, _file: BinaryIO | None = None) -> None:
        """Creates the log at `path` (refusing an existing file) with `header` as its first frame."""
        if records_per_frame < 1:
            raise ValueError("records_per_frame must be >= 1")
        self._path = path
        self._per_frame = records_per_frame
        self._compressor = zstandard.ZstdCompressor(level=compression_level, write_checksum=True,
                                                    write_content_size=True)
        self._pending: list[str] = []
        self._pending_steps = 0  # only step records fill a frame; events ride along
        self._file: BinaryIO | None
        if _file is not None:  # open_for_append
            self._file = _file
            return
        self._file = open(path, "xb")  # noqa: SIM115 - never replaces a log; close() closes it
        line = dict(header)
        line.update({"kind": "header", "magic": MAGIC, "format_version": FORMAT_VERSION})
        self._write_frame([dumps(line)])

    @classmethod
    def open_for_append(cls: type[_Writer], path: str, keep_bytes: int, records_per_frame: int = 16,
                        compression_level: int = 3) -> _Writer:
        """Continues the log at `path` after its first `keep_bytes` bytes (a frame boundary):
        what follows is cut off and fsynced away first."""
        f = open(path, "r+b")  # noqa: SIM115 - the writer's file from now on; close() closes it
        f.truncate(keep_bytes)
        os.fsync(f.fileno())
        f.seek(keep_bytes)
        return cls(path, {}, records_per_frame, compression_level, _file=f)  # a header only for a new log

    def append(self, record: Mapping[str, object], plain: bool = False) -> None:
        """Queues a step record ("kind" is set to "step"); a frame is written every
        records_per_frame records. `plain` as in dumps()."""
        line = dict(record)
        line["kind"] = "step"
        self._add(line, step=True, plain=plain)

    def append_event(self, kind: str, body: Mapping[str, object]) -> None:
        if kind in ("step", "header"):
            raise ValueError("an event's kind must not be step or header")
        record = dict(body)
        record["kind"] = kind
        self._add(record, step=False)

    def flush(self, sync: bool = True) -> None:
        """Writes the queued records as one frame (none: nothing) and, with `sync`, fsyncs."""
        if self._pending:
            self._write_frame(self._pending)
            self._pending, self._pending_steps = [], 0
        if sync:
            os.fsync(self._file.fileno())  # type: ignore[union-attr]  # closed: AttributeError, as it always was

    def close(self) -> None:
        if self._file is None:
            return
        self.flush(sync=True)
        self._file.close()
        self._file = None

    def _add(self, record: Mapping[str, object], step: bool, plain: bool = False) -> None:
        if self._file is None:
            raise ValueError(self._path + ": the step log is closed")
        self._pending.append(dumps(record, plain))
        self._pending_steps += 1 if step else 0
        if step and self._pending_steps >= self._per_frame:
            self._write_frame(self._pending)
            self._pending, self._pending_steps = [], 0

    def _write_frame(self, lines: list[str]) -> None:
        assert self._file is not None  # lines are queued only while the log is open
        text = "".join(line + "\n" for line in lines).encode("utf-8")
        self._file.write(self._compressor.compress(text))  # one write per frame
        self._file.flush()


def read_frames(path: str | os.PathLike[str]) -> list[Frame]:
    """The log's complete frames: (start, end, [records]) each, in order. A truncated or
    damaged tail (a killed writer's last frame) ends the list."""
    with open(path, "rb") as f:
        data = f.read()
    frames: list[Frame] = []
    offset = 0
    while offset < len(data):
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            text = d.decompress(data[offset:])
        except zstandard.ZstdError:
            break
        if not d.eof:
            break
        end = len(data) - len(d.unused_data)
        frames.append((offset, end, [json.loads(line) for line in text.decode("utf-8").splitlines()]))
        offset = end
    return frames
