"""The fast record reader gives exactly what the YAML parser gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import yamlio

ROOT = Path(__file__).resolve().parent.parent


def _slow(text: str):
    return yaml.load(text, Loader=yamlio._TextTimestampLoader)


def test_every_demo_record_reads_the_same_and_fast():
    files = sorted((ROOT / "petitions").rglob("*.yaml"))
    assert len(files) > 1000
    fallbacks = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        fast = yamlio.fast_parse(text)
        if fast is yamlio._FALLBACK:
            fallbacks += 1
            continue
        assert fast == _slow(text), path
    assert fallbacks == 0  # the writers' shape is the fast shape


def _outcome(read, text):
    try:
        return read(text)
    except (yaml.YAMLError, yamlio.YamlError):
        return "error"


def test_yaml_surprises_take_the_slow_path():
    for text in ["a: yes\n", "a: 0o17\n", "a: 1_000\n", "a: 1.5\n", "a: .inf\n", "true: 1\n",
                 "a: b\n  c\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: [1, 2]\n", "- a\n",
                 "a: |+\n  x\n\n", "a: 'it''s' # c\n", "a: 12:30\n", "a: \"\\x41\"\n",
                 "a:\n  b:\n    c: 1\n", "a: >\n  folded\n", "kind: {kind: 0:?}\n"]:
        assert _outcome(yamlio.parse, text) == _outcome(_slow, text), text


KEYS = st.sampled_from(["kind", "at", "by", "body", "title", "final", "to", "n", "legacy", "x_y"])
PLAIN = st.text(alphabet=st.sampled_from(list("abc 明湖路灯-_:#'\"., 0123456789TZ+{}[]|>!&*%@`?")),
                min_size=0, max_size=12)
SCALARS = st.one_of(
    PLAIN,
    st.sampled_from(["true", "false", "null", "~", "2026-11-22T10:15:00+08:00", "2026-12-01",
                     "2026-000123", "'2026-000123'", '"2026-000123"', "12", "-3", "007", "0x1F",
                     '"a\\"b"', "'it''s'", '"\\u4e2d"', "yes", "No"]),
)


@st.composite
def documents(draw):
    lines = []
    for key in draw(st.lists(KEYS, min_size=1, max_size=6)):
        shape = draw(st.sampled_from(["scalar", "block", "flow", "nested", "comment"]))
        if shape == "scalar":
            lines.append(f"{key}: {draw(SCALARS)}".rstrip())
        elif shape == "block":
            body = draw(st.lists(PLAIN, min_size=0, max_size=4))
            marker = draw(st.sampled_from(["|", "|-"]))
            lines.append(f"{key}: {marker}")
            lines.extend(("  " + b) if b.strip() else "" for b in body)
        elif shape == "flow":
            pairs = draw(st.lists(st.tuples(KEYS, SCALARS), max_size=3))
            lines.append(f"{key}: {{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}")
        elif shape == "nested":
            lines.append(f"{key}:")
            for k, v in draw(st.lists(st.tuples(KEYS, SCALARS), max_size=3)):
                lines.append(f"  {k}: {v}".rstrip())
        else:
            lines.append("# " + draw(PLAIN))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(max_examples=1500, deadline=None)
@given(documents())
def test_fast_reader_agrees_with_yaml_whenever_it_answers(text):
    try:
        expected = _slow(text)
    except yaml.YAMLError:
        expected = "error"
    fast = yamlio.fast_parse(text)
    if fast is yamlio._FALLBACK:
        return
    assert fast == expected, text
