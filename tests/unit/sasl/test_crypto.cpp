#include <doctest/doctest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "server/sasl/credentials.hpp"
#include "server/sasl/crypto.hpp"

using namespace herald::sasl;

namespace {

std::string hex(std::string_view s) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

}  // namespace

TEST_CASE("hash names") {
  CHECK(hash_name(Hash::sha1) == "SHA-1");
  CHECK(hash_name(Hash::sha256) == "SHA-256");
  CHECK(hash_name(Hash::sha512) == "SHA-512");
  for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) CHECK(hash_from_name(hash_name(h)) == h);
  CHECK_FALSE(hash_from_name("sha-1"));
  CHECK_FALSE(hash_from_name("SHA-384"));
  CHECK_FALSE(hash_from_name(""));
}

TEST_CASE("base64 RFC 4648 §10 vectors") {
  const std::pair<const char*, const char*> v[] = {{"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    CHECK(base64_encode(plain) == enc);
    CHECK(base64_decode(enc) == std::string(plain));
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(base64_encode("\xFB\xFF") == "+/8=");
}

TEST_CASE("base64 decoding is strict") {
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Z===", "====", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v=", "Zm-_",
                          "Zg==Zm9v", "Z=g=", "Zm=v", "Zh==", "Zm9=", "Zm\0v"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad));
  }
  CHECK_FALSE(base64_decode(std::string("Zm\0v", 4)));
  CHECK_FALSE(base64_decode("Zm9vYg"));  // missing padding
}

TEST_CASE("constant_time_equal") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "ab"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("digest, HMAC and PBKDF2 known answers") {
  CHECK(hex(digest(Hash::sha1, "abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex(digest(Hash::sha256, "abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(digest(Hash::sha512, "abc")) ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
        "454d4423643ce80e2a9ac94fa54ca49f");
  // RFC 4231 test case 2
  CHECK(hex(hmac(Hash::sha256, "Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hex(hmac(Hash::sha512, "Jefe", "what do ya want for nothing?")) ==
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd"
        "caeab1a34d4a6b4b636e070a38bce737");
  // RFC 2202 test case 2
  CHECK(hex(hmac(Hash::sha1, "Jefe", "what do ya want for nothing?")) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(hmac(Hash::sha256, "", "x").size() == 32);
  // RFC 6070
  CHECK(hex(pbkdf2(Hash::sha1, "password", "salt", 1)) == "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  CHECK(hex(pbkdf2(Hash::sha1, "password", "salt", 4096)) == "4b007901b765489abead49d926f721d065a429c1");
  CHECK_THROWS_AS(pbkdf2(Hash::sha1, "password", "salt", 0), std::invalid_argument);
}

TEST_CASE("random_bytes and random_id") {
  CHECK(random_bytes(0).empty());
  CHECK(random_bytes(32).size() == 32);
  CHECK(random_bytes(32) != random_bytes(32));
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    const auto id = random_id();
    CHECK(id.size() >= 16);  // >= 96 bits at < 6 bits per character
    for (char c : id) {
      CHECK(((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')));
    }
    ids.insert(id);
  }
  CHECK(ids.size() == 100);
  CHECK(random_id(32).size() >= 43);
  CHECK(random_id(1).size() >= 2);
}

TEST_CASE("prepare_password is OpaqueString") {
  CHECK(prepare_password("correct horse battery staple") == "correct horse battery staple");
  CHECK(prepare_password("Correct Horse Battery Staple") == "Correct Horse Battery Staple");
  CHECK(prepare_password("\xCF\x80\xC3\x9F\xC3\xA5") == "\xCF\x80\xC3\x9F\xC3\xA5");
  CHECK(prepare_password("Jack of \xE2\x99\xA6s") == "Jack of \xE2\x99\xA6s");
  CHECK(prepare_password("foo\xE1\x9A\x80" "bar") == "foo bar");  // OGHAM SPACE MARK
  CHECK(prepare_password("A\xCC\x8A") == "\xC3\x85");             // NFC
  CHECK_FALSE(prepare_password(""));
  CHECK_FALSE(prepare_password("my cat is a \tby"));
  CHECK_FALSE(prepare_password("bad\xFFutf8"));
}

TEST_CASE("derive_keys follows RFC 5802 §3") {
  const auto salt = *base64_decode("QSXCR+Q6sek8bf92");
  const auto k = derive_keys(Hash::sha1, "pencil", salt, 4096);
  const auto salted = pbkdf2(Hash::sha1, "pencil", salt, 4096);
  CHECK(k.hash == Hash::sha1);
  CHECK(k.salt == salt);
  CHECK(k.iterations == 4096);
  CHECK(k.stored_key == digest(Hash::sha1, hmac(Hash::sha1, salted, "Client Key")));
  CHECK(k.server_key == hmac(Hash::sha1, salted, "Server Key"));
  CHECK_THROWS_AS(derive_keys(Hash::sha1, "pencil", salt, 0), std::invalid_argument);
}

TEST_CASE("make_credentials: every hash, fresh salts, keys that verify") {
  const auto c = make_credentials("pencil", 4096);
  REQUIRE(c.keys.size() == 3);
  std::set<std::string> salts;
  for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
    CAPTURE(hash_name(h));
    const ScramKeys* k = c.find(h);
    REQUIRE(k != nullptr);
    CHECK(k->salt.size() == 16);
    CHECK(k->iterations == 4096);
    CHECK(k->stored_key.size() == hash_size(h));
    CHECK(k->server_key.size() == hash_size(h));
    const auto again = derive_keys(h, "pencil", k->salt, k->iterations);
    CHECK(again.stored_key == k->stored_key);
    CHECK(again.server_key == k->server_key);
    CHECK(derive_keys(h, "pencil2", k->salt, k->iterations).stored_key != k->stored_key);
    salts.insert(k->salt);
  }
  CHECK(salts.size() == 3);
  CHECK(c.strongest()->hash == Hash::sha512);
  CHECK(make_credentials("pencil", 4096).find(Hash::sha256)->salt != c.find(Hash::sha256)->salt);
  // Preparation is applied: the NFC form verifies the same.
  const auto n = make_credentials("A\xCC\x8A", 1);
  CHECK(derive_keys(Hash::sha256, "\xC3\x85", n.find(Hash::sha256)->salt, 1).stored_key ==
        n.find(Hash::sha256)->stored_key);
  CHECK_THROWS_AS(make_credentials("", 4096), std::invalid_argument);
  CHECK_THROWS_AS(make_credentials("a\x01", 4096), std::invalid_argument);
  CHECK_THROWS_AS(make_credentials("pencil", 0), std::invalid_argument);
}

TEST_CASE("unknown_user_salt is deterministic per process and per name") {
  CHECK(unknown_user_salt(Hash::sha256, "a") == unknown_user_salt(Hash::sha256, "a"));
  CHECK(unknown_user_salt(Hash::sha256, "a") != unknown_user_salt(Hash::sha256, "b"));
  CHECK(unknown_user_salt(Hash::sha256, "a") != unknown_user_salt(Hash::sha1, "a"));
  CHECK(unknown_user_salt(Hash::sha1, "a").size() == 16);
}
