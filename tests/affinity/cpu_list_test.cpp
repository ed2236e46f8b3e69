#include "ipex/affinity/cpu_list.h"

#include <gtest/gtest.h>

using ipex::affinity::CpuListError;
using ipex::affinity::format_id_list;
using ipex::affinity::parse_id_list;

TEST(CpuList, ParsesIdsAndRangesWithSpaces) {
    EXPECT_EQ(parse_id_list("0-3,8, 10 - 11"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
    EXPECT_EQ(parse_id_list(" 5 "), (std::vector<int>{5}));
}

TEST(CpuList, KeepsOrderOfAppearance) {
    EXPECT_EQ(parse_id_list("8,0-1"), (std::vector<int>{8, 0, 1}));
}

TEST(CpuList, ReversedRangeMeansTheSame) {
    EXPECT_EQ(parse_id_list("7-4"), (std::vector<int>{4, 5, 6, 7}));
}

TEST(CpuList, RejectsBadText) {
    EXPECT_THROW(parse_id_list(""), CpuListError);
    EXPECT_THROW(parse_id_list("a"), CpuListError);
    EXPECT_THROW(parse_id_list("1,,2"), CpuListError);
    EXPECT_THROW(parse_id_list("-1"), CpuListError);
    EXPECT_THROW(parse_id_list("1-2-3"), CpuListError);
    EXPECT_THROW(parse_id_list("99999999"), CpuListError);
}

TEST(CpuList, RejectsRepeatedIdsNamingThem) {
    try {
        parse_id_list("0-3,2");
        FAIL() << "no error";
    } catch (const CpuListError& e) {
        EXPECT_NE(std::string(e.what()).find("id 2 appears twice"), std::string::npos) << e.what();
    }
}

TEST(CpuList, FormatsCompactSortedRanges) {
    EXPECT_EQ(format_id_list({3, 0, 1, 2, 8, 10, 11}), "0-3,8,10-11");
    EXPECT_EQ(format_id_list({5}), "5");
    EXPECT_EQ(format_id_list({}), "");
}

TEST(CpuList, RoundTrips) {
    const std::vector<int> ids = {0, 2, 4, 5, 6, 100, 101};
    EXPECT_EQ(parse_id_list(format_id_list(ids)), ids);
}
