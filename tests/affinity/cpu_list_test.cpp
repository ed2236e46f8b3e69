#include "ipex/affinity/cpu_list.h"

#include <gtest/gtest.h>

using ipex::affinity::CpuListError;
using ipex::affinity::format_id_list;
using ipex::affinity::parse_id_list;

constexpr int kMaxId = 1023;

TEST(CpuList, ParsesIdsAndRangesWithSpaces) {
    EXPECT_EQ(parse_id_list("0-3,8, 10 - 11", kMaxId), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
    EXPECT_EQ(parse_id_list(" 5 ", kMaxId), (std::vector<int>{5}));
}

TEST(CpuList, KeepsOrderOfAppearance) {
    EXPECT_EQ(parse_id_list("8,0-1", kMaxId), (std::vector<int>{8, 0, 1}));
}

TEST(CpuList, ReversedRangeMeansTheSame) {
    EXPECT_EQ(parse_id_list("7-4", kMaxId), (std::vector<int>{4, 5, 6, 7}));
}

TEST(CpuList, RejectsBadText) {
    EXPECT_THROW(parse_id_list("", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("a", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("1,,2", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("-1", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("1-2-3", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("99999999999", kMaxId), CpuListError);
}

TEST(CpuList, RefusesRangesAboveTheLimitBeforeExpandingThem) {
    EXPECT_EQ(parse_id_list("1020-1023", kMaxId), (std::vector<int>{1020, 1021, 1022, 1023}));
    EXPECT_EQ(parse_id_list("0007", 7), (std::vector<int>{7}));
    EXPECT_EQ(parse_id_list("5000", kMaxId), (std::vector<int>{5000}));  // the caller says why not
    try {
        parse_id_list("0-4000000000", kMaxId);
        FAIL() << "no error";
    } catch (const CpuListError& e) {
        EXPECT_STREQ(e.what(), "id 4000000000 in '0-4000000000' is too large");
    }
    try {
        parse_id_list("2, 0 - 2000000000", kMaxId);
        FAIL() << "no error";
    } catch (const CpuListError& e) {
        EXPECT_STREQ(e.what(),
                     "range 0 - 2000000000 in '2, 0 - 2000000000' goes beyond 1023, the largest "
                     "id there is");
    }
    EXPECT_THROW(parse_id_list("1000-1024", kMaxId), CpuListError);
    EXPECT_THROW(parse_id_list("99999999999999999999999-0", kMaxId), CpuListError);
}

TEST(CpuList, QuotesTheTextItEchoes) {
    try {
        parse_id_list("1\nx", kMaxId);
        FAIL() << "no error";
    } catch (const CpuListError& e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("'1\\nx'"), std::string::npos) << e.what();
    }
}

TEST(CpuList, RejectsRepeatedIdsNamingThem) {
    try {
        parse_id_list("0-3,2", kMaxId);
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
    EXPECT_EQ(parse_id_list(format_id_list(ids), kMaxId), ids);
}
