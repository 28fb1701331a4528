"""CaseOps (``lossless_caps_caseops_v1``): a lossless case transform of text, and the original
byte count of each token (the byte sidecar that keeps BPB on the original text).

The transform (openai/parameter-golf PR #1729, ``lossless_caps.py``; every CaseOps record since
ships the same file) rewrites each maximal run of ASCII letters and touches nothing else:

* a lowercase word stays as it is;
* an all-capitals word of two letters or more becomes ``ALLCAPS`` + the word in lowercase;
* any other word starting with a capital gets ``TITLE`` in front; then, in lowercase, every later
  capital of the word is preceded by ``CAPNEXT`` ("Hello" -> TITLE hello, "A" -> TITLE a,
  "iPhone" -> i CAPNEXT phone, "McDonald" -> TITLE mc CAPNEXT donald);
* a control character present in the text is escaped as ``ESC`` + the character.

The controls are the private-use characters U+E001..U+E004. ``decode`` is the exact inverse of
``encode`` and accepts only canonical encodings (what ``encode`` can produce), so the two are a
bijection between texts and valid encodings; anything else is a ``CaseOpsError`` naming the
position. A SentencePiece model trained on encoded text reserves the four controls as
``user_defined_symbols`` (one piece each; PR #1729's ``reserve_text_transform_controls``).

Bytes: a token's original bytes are the UTF-8 bytes of its surface (the span of the encoded
text SentencePiece assigns to it) minus the controls it carries, except that an escaped control
counts as itself (``original_byte_counts``). Summed over a document, that is the UTF-8 size of
the text SentencePiece keeps: nmt_nfkc drops a document's leading and trailing whitespace, as it
does for the challenge's own byte tables.
"""
from __future__ import annotations

from typing import Iterable

from golf_core.errors import DataError

#: The transform's name in the records' tokenizer specs and dataset variants.
TRANSFORM_NAME = "lossless_caps_caseops_v1"
TITLE = "\ue001"
ALLCAPS = "\ue002"
CAPNEXT = "\ue003"
ESC = "\ue004"
#: The reserved control characters, in the order the records give them to SentencePiece.
CONTROLS = (TITLE, ALLCAPS, CAPNEXT, ESC)
_CONTROL_SET = frozenset(CONTROLS)
_WORD_MARKERS = frozenset((TITLE, ALLCAPS))


class CaseOpsError(DataError):
    """A string that is not a canonical CaseOps encoding."""


def _is_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _encode_word(word: str, out: list) -> None:
    lower = word.lower()
    if word == lower:
        out.append(word)
    elif len(word) >= 2 and word == word.upper():
        out.append(ALLCAPS)
        out.append(lower)
    else:
        if "A" <= word[0] <= "Z":
            out.append(TITLE)
        out.append(lower[0])
        for ch in word[1:]:
            if "A" <= ch <= "Z":
                out.append(CAPNEXT)
            out.append(ch.lower())


def encode(text: str) -> str:
    """The CaseOps encoding of ``text`` (see the module docstring)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _is_letter(ch):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            _encode_word(text[i:j], out)
            i = j
            continue
        if ch in _CONTROL_SET:
            out.append(ESC)
        out.append(ch)
        i += 1
    return "".join(out)


def _decode_loose(enc: str) -> str:
    """Undo the markers of ``enc``; raise CaseOpsError on a marker that cannot apply."""
    out: list[str] = []
    word_mode = ""      # TITLE or ALLCAPS announced for the next word
    capnext = False     # CAPNEXT announced for the next letter
    in_word = False     # the previous output character was a letter of the current word
    shouting = False    # the current word is ALLCAPS
    i, n = 0, len(enc)
    while i < n:
        ch = enc[i]
        if ch == ESC:
            if i + 1 >= n or enc[i + 1] not in _CONTROL_SET:
                raise CaseOpsError(f"position {i}: ESC must be followed by a control character")
            if word_mode or capnext:
                raise CaseOpsError(f"position {i}: a case marker is followed by an escaped control")
            out.append(enc[i + 1])
            in_word = shouting = False
            i += 2
            continue
        if ch in _WORD_MARKERS:
            if word_mode or capnext or in_word:
                raise CaseOpsError(f"position {i}: word marker U+{ord(ch):04X} is not at the start of a word")
            word_mode = ch
        elif ch == CAPNEXT:
            if capnext or word_mode or not in_word or shouting:
                raise CaseOpsError(f"position {i}: CAPNEXT is not inside a lowercase-marked word")
            capnext = True
        elif "a" <= ch <= "z":
            upper = (not in_word and bool(word_mode)) or capnext or shouting
            if not in_word:
                shouting = word_mode == ALLCAPS
            out.append(ch.upper() if upper else ch)
            word_mode, capnext, in_word = "", False, True
        else:
            if word_mode or capnext:
                raise CaseOpsError(f"position {i}: a case marker is not followed by a lowercase ASCII letter")
            if "A" <= ch <= "Z":
                raise CaseOpsError(f"position {i}: capital {ch!r} in an encoding (capitals are markers + lowercase)")
            out.append(ch)
            in_word = shouting = False
        i += 1
    if word_mode or capnext:
        raise CaseOpsError(f"position {n}: the encoding ends with a dangling case marker")
    return "".join(out)


def decode(enc: str) -> str:
    """The text whose CaseOps encoding is ``enc``; CaseOpsError when ``enc`` is not canonical
    (``encode(decode(enc)) == enc`` always holds for what this returns)."""
    text = _decode_loose(enc)
    again = encode(text)
    if again != enc:
        at = next((k for k, (a, b) in enumerate(zip(again, enc)) if a != b), min(len(again), len(enc)))
        raise CaseOpsError(f"position {at}: not the canonical CaseOps encoding of its text")
    return text


def original_byte_counts(surfaces: Iterable[str]) -> list[int]:
    """Original UTF-8 bytes of each token, from the surfaces SentencePiece gives the pieces of an
    encoded document, in order: every character counts its UTF-8 size, except TITLE, ALLCAPS,
    CAPNEXT and an escaping ESC, which count 0 (an escape may end one surface and its control
    start the next). CaseOpsError when the surfaces end inside an escape."""
    counts: list[int] = []
    escaped = False
    for surface in surfaces:
        n = 0
        for ch in surface:
            if escaped:
                n += len(ch.encode("utf-8"))
                escaped = False
            elif ch == ESC:
                escaped = True
            elif ch not in _CONTROL_SET:
                n += len(ch.encode("utf-8"))
        counts.append(n)
    if escaped:
        raise CaseOpsError("the surfaces end inside an ESC escape")
    return counts


def piece_surfaces(sp, text: str) -> tuple[list[int], list[str]]:
    """Token ids and surfaces of ``text`` under a SentencePiece processor (its encoding proto;
    needs the ``protobuf`` package)."""
    try:
        proto = sp.encode(text, out_type="proto")
    except ImportError:
        raise DataError("CaseOps byte sidecars need SentencePiece's piece surfaces, which need protobuf: "
                        "pip install 'golf-core[caseops]'") from None
    return [int(p.id) for p in proto.pieces], [p.surface for p in proto.pieces]


def is_caseops_tokenizer(sp) -> bool:
    """True when every CaseOps control is a piece of its own in the SentencePiece model ``sp``."""
    return all(sp.piece_to_id(c) != sp.unk_id() for c in CONTROLS)
