"""The trainer and normaliser options stored inside a SentencePiece model, read from its bytes without protobuf.

A model proto keeps the options it was trained with (TrainerSpec, field 2; NormalizerSpec, field 3), so a test can
ask a trained model which options it had. Options left at their default may be absent: `options` fills those in.
"""

from __future__ import annotations

import struct

# field number -> (option name, kind, default) in TrainerSpec and NormalizerSpec (sentencepiece_model.proto)
_TRAINER = {3: ("model_type", "enum", "unigram"), 4: ("vocab_size", "int", 8000),
            10: ("character_coverage", "float", 0.9995), 20: ("max_sentencepiece_length", "int", 16),
            25: ("split_digits", "bool", False), 26: ("allow_whitespace_only_pieces", "bool", False),
            35: ("byte_fallback", "bool", False)}
_NORMALIZER = {1: ("normalization_rule_name", "str", "nmt_nfkc"), 3: ("add_dummy_prefix", "bool", True),
               4: ("remove_extra_whitespaces", "bool", True)}
_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes):
    """(field number, wire type, raw value) of each top-level field of one protobuf message."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _decode(kind: str, value):
    if kind == "float":
        return round(struct.unpack("<f", value)[0], 6)
    if kind == "str":
        return bytes(value).decode("utf-8")
    if kind == "bool":
        return bool(value)
    if kind == "enum":
        return _MODEL_TYPES.get(value, value)
    return value


DEFAULTS = {name: default for name, _, default in (*_TRAINER.values(), *_NORMALIZER.values())}


def options(model_proto: bytes) -> dict:
    """{option name: value} for the options the notebook's table names, defaults filled in where not stored."""
    found = dict(DEFAULTS)
    for number, _, value in _fields(bytes(model_proto)):
        table = {2: _TRAINER, 3: _NORMALIZER}.get(number)
        if table is None:
            continue
        for field, _, raw in _fields(value):
            if field in table:
                name, kind, _ = table[field]
                found[name] = _decode(kind, raw)
    return found


__all__ = ["DEFAULTS", "options"]
