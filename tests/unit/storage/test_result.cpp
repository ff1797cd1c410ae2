#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "storage/pg/connection.hpp"
#include "storage/pg/result.hpp"

using herald::storage::pg::decode_bytea;

TEST_CASE("bytea: hex format") {
  CHECK(decode_bytea("\\x") == std::string());
  CHECK(decode_bytea("\\x00ff10") == std::string("\x00\xff\x10", 3));
  CHECK(decode_bytea("\\xDEADbeef") == std::string("\xde\xad\xbe\xef"));
  CHECK(decode_bytea("\\x00 01\n02") == std::string("\x00\x01\x02", 3));
  CHECK_FALSE(decode_bytea("\\x0").has_value());    // odd digit count
  CHECK_FALSE(decode_bytea("\\x0g").has_value());   // not hex
  CHECK_FALSE(decode_bytea("\\x0 0").has_value());  // space inside a pair
}

TEST_CASE("bytea: escape format") {
  CHECK(decode_bytea("") == std::string());
  CHECK(decode_bytea("abc") == std::string("abc"));
  CHECK(decode_bytea("a\\\\b") == std::string("a\\b"));
  CHECK(decode_bytea("\\000\\377x") == std::string("\x00\xffx", 3));
  CHECK_FALSE(decode_bytea("\\400").has_value());  // above 255
  CHECK_FALSE(decode_bytea("\\08").has_value());   // not octal
  CHECK_FALSE(decode_bytea("trailing\\").has_value());
  CHECK_FALSE(decode_bytea("\\12").has_value());  // truncated
}

TEST_CASE("bytea: every byte value survives the hex format") {
  std::string all, hex = "\\x";
  static const char digits[] = "0123456789abcdef";
  for (int b = 0; b < 256; ++b) {
    all += static_cast<char>(b);
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  CHECK(decode_bytea(hex) == all);
}

TEST_CASE("params: text, integers, bytea and NULL") {
  using herald::storage::pg::Param;
  auto list = herald::storage::pg::params("text", std::string("str"), std::string_view("view"), 42,
                                          std::uint32_t{4096}, std::int64_t{-7},
                                          Param::bytea(std::string("\0\1", 2)), Param::null());
  REQUIRE(list.size() == 8);
  CHECK(*list[0].value == "text");
  CHECK(*list[1].value == "str");
  CHECK(*list[2].value == "view");
  CHECK(*list[3].value == "42");
  CHECK(*list[4].value == "4096");
  CHECK(*list[5].value == "-7");
  CHECK(list[6].binary);
  CHECK(*list[6].value == std::string("\0\1", 2));
  CHECK_FALSE(list[0].binary);
  CHECK_FALSE(list[7].value.has_value());
}

TEST_CASE("text[]: decoding array_out's format") {
  using herald::storage::pg::decode_text_array;
  using V = std::vector<std::string>;
  CHECK(decode_text_array("{}") == V{});
  CHECK(decode_text_array("{a}") == V{"a"});
  CHECK(decode_text_array("{Friends,Work}") == V{"Friends", "Work"});
  CHECK(decode_text_array(R"({"",a,"b c","x\"y","back\\slash","{}","NULL",null2})") ==
        V{"", "a", "b c", "x\"y", "back\\slash", "{}", "NULL", "null2"});
  CHECK(decode_text_array("{\"a,b\",é}") == V{"a,b", "é"});
  CHECK_FALSE(decode_text_array("").has_value());
  CHECK_FALSE(decode_text_array("{").has_value());
  CHECK_FALSE(decode_text_array("{a,NULL}").has_value());  // SQL NULL
  CHECK_FALSE(decode_text_array("{a,null}").has_value());
  CHECK_FALSE(decode_text_array("{{a,b},{c,d}}").has_value());  // two dimensions
  CHECK_FALSE(decode_text_array("[2:3]={a,b}").has_value());
  CHECK_FALSE(decode_text_array("{a,}").has_value());
  CHECK_FALSE(decode_text_array("{\"a}").has_value());
  CHECK_FALSE(decode_text_array("{\"a\"b}").has_value());
}

TEST_CASE("text[]: encoding quotes everything and round-trips") {
  using herald::storage::pg::decode_text_array;
  using herald::storage::pg::encode_text_array;
  using V = std::vector<std::string>;
  CHECK(encode_text_array(V{}) == "{}");
  CHECK(encode_text_array(V{"a", ""}) == R"({"a",""})");
  V odd{"", "x\"y", "back\\slash", "{,}", "NULL", " sp ", "é"};
  CHECK(encode_text_array(odd) == R"({"","x\"y","back\\slash","{,}","NULL"," sp ","é"})");
  CHECK(decode_text_array(encode_text_array(odd)) == odd);
}
