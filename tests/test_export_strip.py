"""The prose the compact script drops (golf_core.export.strip): Field descriptions, technique
summaries and the English of error messages go, values and behaviour stay."""
from __future__ import annotations

import textwrap

import pytest
from pydantic import BaseModel, Field, ValidationError

from golf_core.export.strip import strip_prose

SOURCE = textwrap.dedent('''
    class GolfError(Exception):
        pass
    class Opts(BaseModel):
        bits: int = Field(6, ge=2, le=8, description="bits per weight, a long sentence for people")
        name: str = Field("x", title="Name", description="the name")
    def check(n):
        if n < 0:
            raise GolfError(f"option bits of plugin {n!r} must be positive, got {n + 1}")
        if n == 0:
            raise ValueError("zero is not a count of anything the run can use")
        if n == 1:
            raise SystemExit("run `python prepare_data.py` first")
        return Opts(bits=n)
    INFO = dict(summary="kept: not a TechniqueInfo call")
''')


def _load(source: str) -> dict:
    ns = {"BaseModel": BaseModel, "Field": Field}
    exec(compile(source, "<strip>", "exec"), ns)
    return ns


def test_prose_goes_and_behaviour_stays():
    before, after = _load(SOURCE), _load(strip_prose(SOURCE))
    out = strip_prose(SOURCE)
    assert "long sentence" not in out and "title=" not in out and "must be positive" not in out
    assert "zero is not" not in out
    assert "prepare_data.py" in out and "not a TechniqueInfo call" in out
    # the options validate exactly as before
    for ns in (before, after):
        assert ns["check"](6).bits == 6 and ns["Opts"]().name == "x"
        with pytest.raises(ValidationError):
            ns["Opts"](bits=9)
    assert after["Opts"].model_fields["bits"].description is None
    # the error still names the culprit's values, without the sentence around them
    with pytest.raises(Exception) as e:
        after["check"](-3)
    assert type(e.value).__name__ == "GolfError" and str(e.value) == "-3 -2"
    with pytest.raises(ValueError):
        after["check"](0)
    with pytest.raises(SystemExit, match="prepare_data.py"):
        after["check"](1)


def test_technique_summary_goes():
    src = 'info = TechniqueInfo(name="ema", summary="an EMA of the weights", reported_delta="-0.001", legality="x")'
    out = strip_prose(src)
    assert "summary" not in out and "reported_delta" not in out and "name='ema'" in out and "legality='x'" in out


def test_docstrings_go_even_where_doc_is_read():
    src = textwrap.dedent('''
        """Module doc."""
        def spec():
            """Only a docstring: the body becomes pass."""
        def copier(fn):
            return fn.__doc__ or "none"
        class K:
            """Class doc."""
            x = 1
    ''')
    out = strip_prose(src)
    assert "doc" not in out.replace("__doc__", "").lower()
    ns: dict = {}
    exec(compile(out, "<strip>", "exec"), ns)
    assert ns["spec"]() is None and ns["copier"](ns["spec"]) == "none" and ns["K"].x == 1
