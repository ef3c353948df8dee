"""Masking of personal data in public text, and sealing of contacts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.bridge.privacy import (ContactSealer, id_card_checksum_ok, luhn_ok, mask_personal_data,
                                      new_key_pair, open_contact)


def test_id_checksum_by_hand():
    # 11010519491231002X: weights give sum 167, 167 % 11 = 2 -> 'X' (worked by hand)
    assert id_card_checksum_ok("11010519491231002X")
    assert not id_card_checksum_ok("110105194912310021")


def test_luhn_by_hand():
    assert luhn_ok("4111111111111111")  # the well-known test card
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize("text, expected, kinds", [
    ("电话13812345678请回电", "电话[手机号已隐去]请回电", ("phone",)),
    ("电话 138-1234-5678。", "电话 [手机号已隐去]。", ("phone",)),
    ("+86 138 1234 5678", "[手机号已隐去]", ("phone",)),
    ("电话１３８１２３４５６７８", "电话[手机号已隐去]", ("phone",)),
    ("座机 0527-84561234", "座机 [电话号码已隐去]", ("phone",)),
    ("邮箱 a.b+c@example.com.cn 谢谢", "邮箱 [邮箱已隐去] 谢谢", ("email",)),
    ("身份证11010519491231002X", "身份证[身份证号已隐去]", ("id_card",)),
    ("卡号 4111 1111 1111 1111", "卡号 [银行卡号已隐去]", ("bank_card",)),
    ("2026年3月5日下午3点，12345热线", "2026年3月5日下午3点，12345热线", ()),
    ("门牌号 138 号", "门牌号 138 号", ()),
])
def test_masking(text, expected, kinds):
    masked = mask_personal_data(text)
    assert masked.text == expected
    assert masked.kinds == kinds


# -- the ways people type numbers (issue #19): each is masked, the rest of the text kept as typed ----------

@pytest.mark.parametrize("text, expected, kinds", [
    ("电话158－1234－5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话：1591 234 5678，谢谢", "电话：[手机号已隐去]，谢谢", ("phone",)),
    ("打188.1234.5678找我", "打[手机号已隐去]找我", ("phone",)),
    ("手机（+86）138 1234 5678", "手机[手机号已隐去]", ("phone",)),
    ("座机057765889999，", "座机[电话号码已隐去]，", ("phone",)),
    ("座机 0577 6588 7777。", "座机 [电话号码已隐去]。", ("phone",)),
    ("（0577）65887777", "[电话号码已隐去]", ("phone",)),
    ("010-8888 1234", "[电话号码已隐去]", ("phone",)),
    ("Tel: +86 577 6588 7777", "Tel: [电话号码已隐去]", ("phone",)),
    ("家里电话 6588 7777", "家里电话 [电话号码已隐去]", ("phone",)),
    ("身份证 330302 19900307 1231。", "身份证 [身份证号已隐去]。", ("id_card",)),
    ("身份证330302850614127号", "身份证[身份证号已隐去]号", ("id_card",)),
    ("身份证110105198512120417（末位记不清）", "身份证[身份证号已隐去]（末位记不清）", ("id_card",)),
    ("订单号 110105194912310021", "订单号 [身份证号已隐去]", ("id_card",)),
    ("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ，谢谢。", "[邮箱已隐去]，谢谢。", ("email",)),
    ("邮箱zhao@example。com。", "邮箱[邮箱已隐去]。", ("email",)),
    ("卡号6222 0212 3456 7890 128", "卡号[银行卡号已隐去]", ("bank_card",)),
    ("卡号6222021234567890128", "卡号[银行卡号已隐去]", ("bank_card",)),
    ("电话１３８\u200b１２３４\u200b５６７８", "电话[手机号已隐去]", ("phone",)),
    ("电话一三八一二三四五六七八，", "电话[手机号已隐去]，", ("phone",)),
    ("电话1\u030138 1234 5678\ufe0f。", "电话[手机号已隐去]\ufe0f。", ("phone",)),
    ("邮箱 zhang#qq.com 或 wang艾特163点com。", "邮箱 [邮箱已隐去] 或 [邮箱已隐去]。", ("email",)),
    ("QQ号：123456789，微信 zhang_wei88", "QQ号：[QQ/微信号已隐去]，微信 [QQ/微信号已隐去]", ("im_id",)),
    # the red-team pass (issue #23): typed forms that got through
    ("电话壹叁捌壹贰叁肆伍陆柒捌。", "电话[手机号已隐去]。", ("phone",)),
    ("电话一三八 一二三四 五六七八。", "电话[手机号已隐去]。", ("phone",)),
    ("电话 1 3 8 1 2 3 4 5 6 7 8。", "电话 [手机号已隐去]。", ("phone",)),
    ("电话 1 3 8 1 2 3 4 5 6 7 8 9", "电话 [手机号已隐去]", ("phone",)),
    ("电话一三八，一二三四，五六七八。", "电话[手机号已隐去]。", ("phone",)),
    ("电话一三八1234五六七八。", "电话[手机号已隐去]。", ("phone",)),
    ("电话 1 3 8 - 1 2 3 4 - 5 6 7 8。", "电话 [手机号已隐去]。", ("phone",)),
    ("电话138；1234；5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138：1234：5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138，1234，5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138,1234,5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138、1234、5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138~1234~5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138*1234*5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138+1234+5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话138｜1234｜5678。", "电话[手机号已隐去]。", ("phone",)),
    ("电话\n138\n1234\n5678\n谢谢", "电话\n[手机号已隐去]\n谢谢", ("phone",)),
    ("电话 138    1234    5678。", "电话 [手机号已隐去]。", ("phone",)),
    ("座机 05278456 1234。", "座机 [电话号码已隐去]。", ("phone",)),
    ("邮箱 zhangsan at qq dot com 谢谢", "邮箱 [邮箱已隐去] 谢谢", ("email",)),
    ("邮箱 zhangsan [at] qq [dot] com 谢谢", "邮箱 [邮箱已隐去] 谢谢", ("email",)),
    ("邮箱张三@qq.com，谢谢", "邮箱[邮箱已隐去]，谢谢", ("email",)),
    ("邮箱 zhang san @ example . com 谢谢", "邮箱 [邮箱已隐去] 谢谢", ("email",)),
    ("身份证321302 1980 0101 123 X。", "身份证[身份证号已隐去]。", ("id_card",)),
    ("6222 0212 3456 7890 123", "[银行卡号已隐去]", ("bank_card",)),
    ("卡号 1234 5678 9012 3456", "卡号 [银行卡号已隐去]", ("bank_card",)),  # Luhn fails, the word says card
])
def test_masking_how_people_type(text, expected, kinds):
    masked = mask_personal_data(text)
    assert masked.text == expected
    assert masked.kinds == kinds


# -- what must stay: dates, amounts, case ids, times, ordinary numbers ------------------------------------

@pytest.mark.parametrize("text", [
    "2026-11-22 下午3点在小区门口",
    "20261122 那天又停水了",
    "2026年11月22日 14:30 至 2026年11月23日 09:15",
    "2026.11.22—2026.12.05 施工",
    "诉求 2026-000123 已办结，另见 2025-004567",
    "押金 12,800 元，共 3 期，每期 1,234.56 元，合计 13800.00 元",
    "欠薪 158000 元，涉及工人 1591 人",
    "12路、302路公交，12345 热线，110 报警",
    "小区 3 栋 2 单元，车位 A-1024",
    "2019 2020 2021 2022 这四年都没修",
    "面积 1591.23 平方米，造价 18812345 元",
    "第 2026 11 22 号文件",  # numbers in a row, none a phone
    "第1页 第2页",
    "二〇二六年十一月二十二日，一二三四五六号楼",  # Chinese digits: a date, six in a row
    "Boston 311 case 101004113298",  # an overseas case number, 12 digits
    "房号 1301 1302 1303 1304",  # room numbers in a list, not a card (Luhn holds, prefix 13 is no card's)
    "2026年11月22日，3人，5000元",  # commas between numbers do not glue them
    "1、2、3、4、5、6、7、8、9、10、11",  # a numbered list
    "1 2 3 4 5 6 7 8 9 10 11 12",
    "一、二、三、四、五、六、七、八、九、十",  # a numbered list in Chinese
    "第一三八条、第一二三四条",
    "2026-11-22 14:30:05 到 15:00:00；1380；1234；5678 元三笔",  # times; amounts parted by ；
    "诉求 2026-000123、2025-004567，2024-000001",
    "价格 138,000 元，1,380,000 元",
    "2026.11.22~2026.12.05 施工，14:30~15:00 停水",
    "I will look at example.com today",
])
def test_ordinary_numbers_stay(text):
    masked = mask_personal_data(text)
    assert masked.text == text
    assert masked.kinds == ()


def test_full_width_punctuation_stays_as_typed():
    text = "请于２０２６年１１月２２日前处理！电话：１３８１２３４５６７８。地址：东湖区（近地铁站）。"
    assert mask_personal_data(text).text == "请于２０２６年１１月２２日前处理！电话：[手机号已隐去]。地址：东湖区（近地铁站）。"


def test_public_phones_stay_visible_when_allowed():
    text = "如有疑问请致电本局 0527-8456 1234 或 12345 热线；市民电话 13912345678 已回访。"
    masked = mask_personal_data(text, keep=("0527-84561234",))
    assert masked.text == "如有疑问请致电本局 0527-8456 1234 或 12345 热线；市民电话 [手机号已隐去] 已回访。"
    assert "0527-8456 1234" not in mask_personal_data(text).text
    # the local part alone, after 电话, is the same public number
    assert mask_personal_data("办公电话 84561234", keep=("0527-84561234",)).text == "办公电话 84561234"


@pytest.mark.parametrize("text, flag", [
    ("加我QQ 123456789 详谈", "im_id"),
    ("我住在东湖区湖滨路128号3栋2单元501室", "address"),
    ("幸福小区 5 幢 1201 室漏水", "address"),
])
def test_flags_for_a_moderator(text, flag):
    assert flag in mask_personal_data(text).flags


def test_no_flag_for_a_street_without_house_number():
    assert mask_personal_data("湖滨路路灯坏了").flags == ()


def test_masking_is_idempotent_on_examples():
    for text in ("电话158－1234－5678", "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "330302 19900307 1231"):
        once = mask_personal_data(text).text
        assert mask_personal_data(once).text == once


def test_seal_and_open():
    identity, recipient = new_key_pair()
    sealed = ContactSealer(recipient).seal("李四 13912345678")
    assert b"13912345678" not in sealed
    assert open_contact(sealed, identity) == "李四 13912345678"
    other_identity, _ = new_key_pair()
    with pytest.raises(Exception):
        open_contact(sealed, other_identity)


@pytest.mark.parametrize("text", [
    "位置 (40.837937102587674, -73.94606932829015), (37.8046840108425, -122.413428674915)",
    "耗时 0.00046285582867528803 天，比例 0.9502777777777779，涨幅 1.86 倍，0.0086，1.116423611111111",
    "照片 https://img.example.org/v1641821281/qqzxm04zqks1qlsmfbeu.jpg",
    "I will post it on wechat today",
])
def test_long_fractions_and_words_stay(text):
    assert mask_personal_data(text).text == text


@pytest.mark.parametrize("text", ["1 " * 2500, "1" * 5000, "1-" * 2500, "1234 " * 1000, "a." * 2500,
                                  "1栋" * 1600, "路1" * 2500, "QQ" * 2500,
                                  "1、" * 2500, "1    " * 1000, "张" * 5000, "a at " * 1000, "壹 " * 2500,
                                  "x at qq . " * 500, "1 X " * 1250])
def test_a_full_body_of_pathological_text_is_masked_quickly(text):
    """The bridge masks every submission inline: no input of the form's 5,000
    characters may cost quadratic time (0.9 s for 5,000 digits before)."""
    import time
    started = time.perf_counter()
    mask_personal_data(text)
    assert time.perf_counter() - started < 1.0


# -- properties: any typed form of a number is masked; ordinary numbers never are -----------------------

SEPARATORS = [" ", "-", "－", ".", "—", " - ", "\u3000", "_", "/", "，", ",", "、", "~", "*", "+", "｜", "\n", "    "]
WIDTHS = [lambda s: s, lambda s: "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)]
CONTEXT = st.sampled_from(["", "电话", "请拨", "联系我：", "Tel ", "（", "家住东湖区，"])
AFTER = st.sampled_from(["", "。", "，谢谢", "）", " 张先生", "\n"])


def typed(digits: str, cuts: list[int], sep: str, width) -> str:
    parts, last = [], 0
    for c in sorted(set(cuts)):
        parts.append(digits[last:c])
        last = c
    parts.append(digits[last:])
    return width(sep.join(p for p in parts if p))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.lists(st.sampled_from([3, 4, 7]), max_size=2),
       st.sampled_from(SEPARATORS), st.sampled_from(WIDTHS), CONTEXT, AFTER)
def test_any_typed_mobile_is_masked(number, cuts, sep, width, before, after):
    text = before + typed(number, cuts, sep, width) + after
    masked = mask_personal_data(text)
    assert masked.kinds == ("phone",), (text, masked.text)
    assert masked.text.startswith(before.rstrip("（")) and masked.text.endswith(after)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"0[1-9][0-9]{2}", fullmatch=True), st.from_regex(r"[2-8][0-9]{7}", fullmatch=True),
       st.sampled_from(SEPARATORS + [""]), st.sampled_from(WIDTHS), CONTEXT, AFTER)
def test_any_typed_landline_with_area_code_is_masked(area, local, sep, width, before, after):
    text = before + width(area + sep + local[:4] + (sep if sep != "." else "") + local[4:]) + after
    assert mask_personal_data(text).kinds == ("phone",), text


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[1-6][0-9]{5}(19[5-9][0-9]|200[0-9])(0[1-9]|1[0-2])(0[1-9]|[12][0-9])[0-9]{3}[0-9X]",
                     fullmatch=True), st.lists(st.sampled_from([6, 10, 14]), max_size=3),
       st.sampled_from([" ", "-", "\u3000", ""]), st.sampled_from(WIDTHS), CONTEXT, AFTER)
def test_any_typed_id_number_is_masked(number, cuts, sep, width, before, after):
    text = before + typed(number, cuts, sep, width) + after
    assert mask_personal_data(text).kinds == ("id_card",), text


@settings(max_examples=400, deadline=None)
@given(st.dates(), st.times(), st.integers(0, 10 ** 7), st.integers(0, 99), st.integers(1, 999999),
       st.sampled_from(["-", "/", ".", "年"]))
def test_dates_times_amounts_and_case_ids_stay(day, time_of_day, yuan, fen, seq, sep):
    text = (f"{day.year}{sep}{day.month:02d}{sep}{day.day:02d} {time_of_day:%H:%M}，"
            f"{day:%Y%m%d} 又去了一次，花费 {yuan:,}.{fen:02d} 元（{yuan}.{fen:02d}），"
            f"诉求 {day.year}-{seq:06d}、{day.year}-{seq:06d} 已办结。")
    assert mask_personal_data(text).kinds == (), text


def test_clipped_text_keeps_to_the_limit_and_never_cuts_a_marker():
    masked = mask_personal_data("QQ 86420 " * 12)
    assert len(masked.text) > 100
    clipped = masked.clipped(100)
    assert len(clipped) <= 100 and clipped.endswith("…")
    assert clipped[:-1].rstrip().endswith("[QQ/微信号已隐去]") or clipped[:-1].endswith("QQ ")
    assert mask_personal_data("短文本 13812345678").clipped(100) == "短文本 [手机号已隐去]"
