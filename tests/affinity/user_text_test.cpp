#include "ipex/affinity/user_text.h"

#include <gtest/gtest.h>

using ipex::affinity::one_line;
using ipex::affinity::quote_text;

TEST(UserText, QuotesAndEscapesControlCharacters) {
    EXPECT_EQ(quote_text("plain/path-1"), "'plain/path-1'");
    EXPECT_EQ(quote_text("a\nb\tc\rd"), "'a\\nb\\tc\\rd'");
    EXPECT_EQ(quote_text(std::string("x\0y\x1b\x7f", 5)), "'x\\x00y\\x1b\\x7f'");
    EXPECT_EQ(quote_text("it's a\\b"), "'it\\'s a\\\\b'");
    EXPECT_EQ(quote_text(""), "''");
}

TEST(UserText, KeepsBytesThatAreNotControlCharacters) {
    EXPECT_EQ(quote_text("\xfe\xff caf\xc3\xa9"), "'\xfe\xff caf\xc3\xa9'");
}

TEST(UserText, OneLineOnlyEscapesControlCharacters) {
    EXPECT_EQ(one_line("a 'b' c\\d\ne"), "a 'b' c\\d\\ne");
}

TEST(UserText, ShellQuoteLeavesSafeWordsAndQuotesTheRest) {
    using ipex::affinity::shell_quote;
    EXPECT_EQ(shell_quote("--ninstances=2"), "--ninstances=2");
    EXPECT_EQ(shell_quote("/usr/bin/python3"), "/usr/bin/python3");
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("a b"), "'a b'");
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
}
