"""CaseOps: the transform against hand-written encodings of the rules (PR #1729), its inverse
over the whole demo corpus byte for byte, and properties on hostile strings."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golf_core.data import caseops as co
from golf_core.data import demo_corpus

T, A, C, E = co.TITLE, co.ALLCAPS, co.CAPNEXT, co.ESC

# characters whose case behaves unlike ASCII (length-changing, title-case digraphs, compatibility
# forms that NFKC turns into ASCII, the Kelvin sign that lowercases to "k"), the controls and
# their neighbours in the private-use area, and ASCII
HOSTILE = ("aAbBkKsSzZiI \n\t-'0_"
           "\u00df\u1e9e\u0130\u0131\u017f\u212a\u01c4\u01c5\u01c6\u03a3\u03c2\u03c3\ufb01\uff28\uff48"
           "\u00e9\u00c9\u0301\u4e2d\U0001d49c\U0001f600\x00\ud7ff"
           "\ue000\ue001\ue002\ue003\ue004\ue005")
hostile_text = st.text(alphabet=st.sampled_from(HOSTILE), max_size=40)


@pytest.mark.parametrize("text, expected", [
    ("hello world", "hello world"),
    ("Hello", T + "hello"),
    ("NASA", A + "nasa"),
    ("A", T + "a"),
    ("I am", T + "i am"),
    ("iPhone", "i" + C + "phone"),
    ("McDonald", T + "mc" + C + "donald"),
    ("ABc", T + "a" + C + "bc"),
    ("aBC", "a" + C + "b" + C + "c"),
    ("HTTPServer2Go", T + "h" + C + "t" + C + "t" + C + "p" + C + "server2" + T + "go"),
    ("\u00c9t\u00c9", "\u00c9t\u00c9"),                 # non-ASCII letters split words and stay as they are
    ("x\ue001Y", "x" + E + "\ue001" + T + "y"),         # a literal control is escaped
    ("\ue004\ue004", E + "\ue004" + E + "\ue004"),
    ("\ue000\ue005", "\ue000\ue005"),                   # other private-use characters are left alone
])
def test_encode_follows_the_rules(text, expected):
    assert co.encode(text) == expected
    assert co.decode(expected) == text


def test_the_whole_demo_corpus_round_trips_byte_for_byte():
    docs = demo_corpus.demo_documents()
    changed = 0
    for doc in docs:
        enc = co.encode(doc)
        changed += enc != doc
        assert co.decode(enc).encode("utf-8") == doc.encode("utf-8")
    assert changed > len(docs) // 2  # the corpus has capitals: the transform did something


@settings(max_examples=400, deadline=None)
@given(hostile_text)
def test_decode_inverts_encode_on_hostile_text(text):
    enc = co.encode(text)
    assert co.decode(enc) == text
    assert not any("A" <= ch <= "Z" for ch in enc)
    # the original bytes of any split of the encoding into surfaces add up to the text's bytes
    cut = len(enc) // 2
    assert sum(co.original_byte_counts([enc[:cut], enc[cut:]])) == len(text.encode("utf-8"))
    assert co.original_byte_counts(list(enc)) == _per_character_bytes(enc)


def _per_character_bytes(enc):
    """Reference: an ESC and the control it escapes are read as a pair."""
    out, k = [], 0
    while k < len(enc):
        if enc[k] == E:
            out += [0, len(enc[k + 1].encode("utf-8"))]
            k += 2
            continue
        out.append(0 if enc[k] in (T, A, C) else len(enc[k].encode("utf-8")))
        k += 1
    return out


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab A" + T + A + C + E + "\ue001"), max_size=12))
def test_decode_accepts_only_canonical_encodings(enc):
    try:
        text = co.decode(enc)
    except co.CaseOpsError:
        return
    assert co.encode(text) == enc


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("abz 09-\u00e9\u00df\u4e2d"), max_size=30))
def test_text_without_capitals_or_controls_is_unchanged(text):
    assert co.encode(text) == text


@pytest.mark.parametrize("enc, where", [
    (T, "dangling"),                       # marker at the end
    (C + "a", "CAPNEXT"),                  # CAPNEXT at a word start (canonical: TITLE)
    (A + "a", "canonical"),                # ALLCAPS on one letter (canonical: TITLE a)
    (T + "a" + C + "b", "canonical"),      # "AB" is ALLCAPS ab
    ("a" + T + "b", "start of a word"),
    (E + "a", "ESC"),
    ("Ab", "capital"),
    (T + " ", "lowercase ASCII letter"),
])
def test_malformed_encodings_are_refused_naming_the_position(enc, where):
    with pytest.raises(co.CaseOpsError, match=rf"position \d+: .*{where}"):
        co.decode(enc)


def test_an_escape_split_across_surfaces_counts_once():
    assert co.original_byte_counts(["x" + E, "\ue001y"]) == [1, 4]
    with pytest.raises(co.CaseOpsError, match="inside an ESC"):
        co.original_byte_counts(["x" + E])


def test_piece_surfaces_without_protobuf_is_a_one_line_error():
    class NoProto:
        def encode(self, text, out_type=int):
            raise ImportError("protobuf is required when using out_type='proto'")

    with pytest.raises(co.DataError, match=r"need protobuf: pip install 'golf-core\[caseops\]'"):
        co.piece_surfaces(NoProto(), "x")
