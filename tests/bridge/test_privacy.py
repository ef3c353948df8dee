"""Masking of personal data in public text, and sealing of contacts."""

from __future__ import annotations

import pytest

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
    ("订单号 110105194912310021 不是身份证", "订单号 110105194912310021 不是身份证", ()),
    ("2026年3月5日下午3点，12345热线", "2026年3月5日下午3点，12345热线", ()),
    ("门牌号 138 号", "门牌号 138 号", ()),
])
def test_masking(text, expected, kinds):
    masked = mask_personal_data(text)
    assert masked.text == expected
    assert masked.kinds == kinds


def test_seal_and_open():
    identity, recipient = new_key_pair()
    sealed = ContactSealer(recipient).seal("李四 13912345678")
    assert b"13912345678" not in sealed
    assert open_contact(sealed, identity) == "李四 13912345678"
    other_identity, _ = new_key_pair()
    with pytest.raises(Exception):
        open_contact(sealed, other_identity)
