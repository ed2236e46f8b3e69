#include "finite_number.h"

#include <gtest/gtest.h>

using ipex::launcher::parse_finite_number;

TEST(FiniteNumber, ReadsTheWholeText) {
    EXPECT_EQ(parse_finite_number("0"), 0.0);
    EXPECT_EQ(parse_finite_number("-2.5"), -2.5);
    EXPECT_EQ(parse_finite_number("1e3"), 1000.0);
}

TEST(FiniteNumber, RefusesAnythingElse) {
    for (const char* text :
         {"", " 1", "1 ", "1x", "x", "nan", "NaN", "inf", "-inf", "1e400", "1e-400", "1\n"})
        EXPECT_FALSE(parse_finite_number(text).has_value()) << '"' << text << '"';
}
