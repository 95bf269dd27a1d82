"""Reading a file incrementally: bytes in chunks, decoded in chunks, split into lines (:mod:`.formats` parses them).

Memory is one chunk plus the longest line, whatever the file's size.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import zlib
from pathlib import Path
from textclf.errors import TextclfError

# Bytes read at a time: large enough that per-chunk overhead vanishes, small beside any memory.
CHUNK_BYTES = 1 << 20


class DataFile:
    """An existing data file read in chunks of bytes, decompressed when its name ends in ``.gz``.

    :attr:`bytes_read` says how far into the file on disk (compressed bytes for ``.gz``) the reading is.
    """

    def __init__(self, path: Path):
        if path.is_dir():
            raise TextclfError(f"Expected a data file, got a folder: {path}")
        self.path = path
        self.size = path.stat().st_size
        self.bytes_read = 0

    def chunks(self):
        """Yields the (decompressed) bytes of the file, one chunk at a time."""
        compressed = self.path.suffix.lower() == ".gz"
        with open(self.path, "rb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            while True:
                try:
                    chunk = stream.read(CHUNK_BYTES)
                except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; EOFError when cut.
                    message = f"{self.path} is not valid gzip data ({error}), yet its name ends in .gz"
                    raise TextclfError(message) from None
                self.bytes_read = raw.tell()
                if not chunk:
                    return
                yield chunk


def codec_name(encoding: str, source) -> str:
    """The codec to decode with; UTF-8 as ``utf-8-sig``, so a byte-order mark never sticks to the first column."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise TextclfError(f"Unknown encoding {encoding!r} for {source} (--encoding)") from None
    return "utf-8-sig" if codec.name == "utf-8" else codec.name


def decoded_chunks(byte_chunks, source, encoding: str = "utf-8"):
    """Decodes byte chunks incrementally (a character cut between chunks is decoded whole); drops a UTF-8 BOM.

    Raises ``ValueError`` for an unknown encoding, or naming ``source`` and the line of the first undecodable bytes.
    """
    name = codec_name(encoding, source)
    decoder = codecs.getincrementaldecoder(name)()
    # Line ends decoded so far, as physical_lines counts them ("\n", "\r" or "\r\n"): the line of an error is one
    # more than those before it.  ``after_cr``: the text so far ends in "\r" (a "\n" next completes that end).
    line_breaks, after_cr = 0, False
    for chunk, final in itertools.chain(((chunk, False) for chunk in byte_chunks), [(b"", True)]):
        state = decoder.getstate()
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            # Count line breaks in the decoded prefix, not newline bytes: in UTF-16 a 0x0A byte is not always one.
            # A fresh decoder in the failed one's state (byte order, BOM seen) decodes the prefix of its input.
            prefix_decoder = codecs.getincrementaldecoder(name)(errors="replace")
            prefix_decoder.setstate((b"", state[1]))
            line = line_breaks + _line_ends(prefix_decoder.decode(error.object[: error.start], True), after_cr) + 1
            bad = error.object[error.start:error.end]
            if name == "utf-8-sig":
                advice = (f"bytes {bad!r} are not valid UTF-8 (save the file as UTF-8, or give its encoding with "
                          "--encoding)")
            else:
                advice = f"bytes {bad!r} are not valid {name} (check --encoding)"
            raise TextclfError(f"{source} line {line}: {advice}") from None
        except UnicodeError as error:  # Not about given bytes: "UTF-16 stream does not start with BOM".
            advice = " (utf-16-le or utf-16-be name the byte order of a file without one)" if "BOM" in str(error) else ""
            raise TextclfError(f"{source} line {line_breaks + 1}: cannot be read as {name}: {error}{advice}") from None
        if text:
            line_breaks += _line_ends(text, after_cr)
            after_cr = text.endswith("\r")
            yield text


def _line_ends(text: str, after_cr: bool) -> int:
    r"""How many lines ``text`` ends ("\n", "\r", "\r\n"); ``after_cr``: a "\n" first completes an end counted before."""
    return text.count("\n") + text.count("\r") - text.count("\r\n") - (after_cr and text.startswith("\n"))


def decode(raw: bytes, source, encoding: str = "utf-8") -> str:
    """Decodes ``raw`` whole (see :func:`decoded_chunks`)."""
    return "".join(decoded_chunks([raw], source, encoding))


def physical_lines(text_chunks):
    """Lines of text chunks as ``open(..., newline="")`` splits them: at ``\\n``, ``\\r`` or ``\\r\\n`` (even cut
    between chunks), each keeping its ending (what ``csv.reader`` wants)."""
    pending = []  # Pieces of an unfinished line; joined once a line break arrives, so a long line costs linear time.
    for chunk in text_chunks:
        if "\n" not in chunk and "\r" not in chunk:
            pending.append(chunk)
            continue
        lines = io.StringIO("".join(pending) + chunk, newline="").readlines()
        # The last piece may continue in the next chunk: a line without its ending yet, or a "\r" before its "\n".
        pending = [lines.pop()] if lines and (lines[-1].endswith("\r") or not lines[-1].endswith("\n")) else []
        yield from lines
    if pending:
        # A "\r" kept waiting for its "\n" may be followed by pieces without a line break: split them too.
        yield from io.StringIO("".join(pending), newline="").readlines()


def logical_lines(lines):
    """The physical lines without their endings: one text (or record) per ``\\n``, ``\\r\\n`` or ``\\r``.

    Not ``str.splitlines``: it also breaks at form feed, U+0085, U+2028 and U+2029, which occur inside real texts
    (data/rt_polarity.csv), so ``predict --input`` outputs would no longer line up with its inputs.
    """
    return (line.rstrip("\r\n") for line in lines)
