// Unit tests for mask_pii: each kind (mobile number, resident ID, e-mail, bank card, IPv4) is
// masked in free text, and near-misses are left alone (wrong prefix or length, bad check digit,
// impossible birth date, Luhn failure, octet over 255, digits inside a longer run, a domain
// without a dot). Also a long hostile input, to show the scan does not recurse per character.
// Thread ownership: test thread only.
#include "security/pii_mask.h"

#include <gtest/gtest.h>

#include <string>

namespace autoglm::security {
namespace {

void expect_masked(const std::string& input, const std::string& expected) {
  EXPECT_EQ(mask_pii(input), expected) << "input: " << input;
}
void expect_unchanged(const std::string& input) {
  expect_masked(input, input);
}

TEST(PiiMask, MasksMobileNumbers) {
  expect_masked("call 13812345678 now", "call [PHONE] now");
  expect_masked("19912345678", "[PHONE]");
  expect_masked("tel:+8613812345678.", "tel:[PHONE].");
  expect_masked("+86 13812345678", "[PHONE]");
  expect_masked("008613812345678", "[PHONE]");
  expect_masked("0086-138-1234-5678", "[PHONE]");
  expect_masked("138 1234 5678", "[PHONE]");
  expect_masked("电话13812345678谢谢", "电话[PHONE]谢谢");
}

TEST(PiiMask, LeavesPhoneNearMisses) {
  expect_unchanged("12812345678");   // second digit 2: not a mobile prefix
  expect_unchanged("1381234567");    // 10 digits
  expect_unchanged("138123456789");  // 12 digits: a longer run
  expect_unchanged("order 9913812345678");
  expect_unchanged("138 1234 56789");
  expect_unchanged("138-1234 5678");  // mixed separators
}

TEST(PiiMask, MasksResidentIdsWithValidChecksum) {
  expect_masked("ID 11010519491231002X.", "ID [ID].");
  expect_masked("id=11010519491231002x", "id=[ID]");
  expect_masked("320106200002290019", "[ID]");  // 29 Feb 2000: a leap day
}

TEST(PiiMask, LeavesIdNearMisses) {
  expect_unchanged("110105194912310023");  // wrong check digit (and fails Luhn)
  expect_unchanged("110105194902310026");  // valid checksum, but 31 February
  expect_unchanged("11010519491231002Y");
  expect_unchanged("1110105194912310021");  // inside a longer run
}

TEST(PiiMask, MasksEmailAddresses) {
  expect_masked("mail alice.smith+tag@example.co.uk today", "mail [EMAIL] today");
  expect_masked("<bob@mail.example.com>.", "<[EMAIL]>.");
  expect_masked("13812345678@qq.com", "[EMAIL]");
  expect_masked("a@b.io,c@d.cn", "[EMAIL],[EMAIL]");
}

TEST(PiiMask, LeavesEmailNearMisses) {
  expect_unchanged("root@localhost");  // no dot in the domain
  expect_unchanged("@example.com");
  expect_unchanged("user@.com");
  expect_unchanged("user@example.c");  // one-letter TLD
  expect_unchanged("user@1.2");        // numeric TLD
  expect_unchanged("a @ b.com");
}

TEST(PiiMask, MasksLuhnValidCardNumbers) {
  expect_masked("card 4111111111111111 exp", "card [CARD] exp");
  expect_masked("4111 1111 1111 1111", "[CARD]");
  expect_masked("4111-1111-1111-1111", "[CARD]");
  expect_masked("6222021234567890128", "[CARD]");  // 19 digits
  expect_masked("3782 822463 10005", "[CARD]");    // Amex grouping 4-6-5
}

TEST(PiiMask, LeavesCardNearMisses) {
  expect_unchanged("4111111111111112");          // fails Luhn
  expect_unchanged("4111 1111 1111 1112");       // grouped, fails Luhn
  expect_unchanged("411111111111");              // 12 digits
  expect_unchanged("41111111111111111111");      // 20 digits
  expect_unchanged("4111 1111 1111 1111 1111");  // more groups than a card has
}

TEST(PiiMask, MasksIpv4Addresses) {
  expect_masked("from 192.168.1.20:8080", "from [IP]:8080");
  expect_masked("0.0.0.0 and 255.255.255.255", "[IP] and [IP]");
}

TEST(PiiMask, LeavesIpNearMisses) {
  expect_unchanged("256.1.1.1");
  expect_unchanged("1.2.3");
  expect_unchanged("1.2.3.4.5");  // a longer dotted sequence (OID, version)
  expect_unchanged("10.0.0.1234");
  expect_unchanged("version 1.2.3");
}

TEST(PiiMask, LeavesOrdinaryTextAlone) {
  expect_unchanged("");
  expect_unchanged("The model glm-4-9b-chat answered in 12.5 s with 512 tokens.");
  expect_unchanged("unknown model 'gpt-4o'");
}

TEST(PiiMask, HandlesLongHostileInputInOnePass) {
  // Megabytes of digits, dots and '@' would overflow a recursive regex engine's stack.
  const std::string digits(1 << 20, '7');
  EXPECT_EQ(mask_pii(digits), digits);
  std::string dots;
  for (int i = 0; i < 200000; ++i) dots += "1.";
  EXPECT_EQ(mask_pii(dots), dots);
  std::string ats;
  for (int i = 0; i < 200000; ++i) ats += "a@b";
  EXPECT_EQ(mask_pii(ats), ats);
  const std::string mixed = std::string(100000, 'x') + " 13812345678 " + std::string(1000, '@');
  EXPECT_EQ(mask_pii(mixed), std::string(100000, 'x') + " [PHONE] " + std::string(1000, '@'));
}

TEST(PiiMask, ExcerptMasksBeforeCuttingOnACharacterBoundary) {
  // A card that straddles the cut is masked, not half-printed.
  const std::string text = std::string(10, 'a') + " 4111111111111111 tail";
  EXPECT_EQ(mask_pii_excerpt(text, 14), "aaaaaaaaaa [CA");
  EXPECT_EQ(mask_pii_excerpt(text, 1000), "aaaaaaaaaa [CARD] tail");
  // Never cuts inside a UTF-8 sequence: "电" is 3 bytes.
  EXPECT_EQ(mask_pii_excerpt("ab电话", 4), "ab");
  EXPECT_EQ(mask_pii_excerpt("ab电话", 5), "ab电");
  // Many IDs shrink the text 4.5x: the excerpt still holds only placeholders.
  std::string ids;
  for (int i = 0; i < 1000; ++i) ids += "11010519491231002X ";
  const std::string excerpt = mask_pii_excerpt(ids, 4096);
  EXPECT_EQ(excerpt.find('1'), std::string::npos);
  EXPECT_EQ(excerpt.size(), 4096u);
}

}  // namespace
}  // namespace autoglm::security
