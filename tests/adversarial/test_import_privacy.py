"""The import's public-phone allow-list must not unmask a citizen's number.

privacy.public_phones keeps an office's number visible in official replies.
The attack: an allow-list entry without its area code ("635-4900") must not
keep every number that ends the same way, such as a resident's
(212) 635-4900 in another area.
"""

from __future__ import annotations

from generator import importer

MAPPING = """\
system: t
timezone: America/New_York
columns: {id: id, received_at: t, department: d}
defaults: {category: help, channel: phone}
privacy:
  extra_patterns:
    - {pattern: '(?<!\\d)(?:\\+?1[ .-]?)?\\(?\\d{3}\\)?[ .-]?\\d{3}[ .-]\\d{4}(?!\\d)', marker: '[电话号码已隐去]'}
  public_phones: [PUBLIC]
"""


def _mask(public: str, text: str) -> str:
    mapping, problems = importer.load_mapping(MAPPING.replace("PUBLIC", f'"{public}"'), "m.yaml")
    assert mapping is not None, problems
    return importer._mask(text, mapping)


def test_a_short_allow_entry_does_not_unmask_numbers_ending_alike():
    out = _mask("635-4900", "Resident asks to be called on (212) 635-4900.")
    assert "635-4900" not in out and "[电话号码已隐去]" in out


def test_the_office_number_is_kept_in_its_usual_spellings():
    for spelling in ("617-635-4900", "(617) 635-4900", "+1 617 635 4900", "617.635.4900"):
        out = _mask("617-635-4900", f"Call the office at {spelling} for help.")
        assert spelling in out, (spelling, out)
    out = _mask("617-635-4900", "or the resident at 617-635-4901")
    assert "4901" not in out
