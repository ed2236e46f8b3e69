// The report line protocol: text and binary records, chunking, bad input.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "report_protocol.h"

namespace ipex::launcher {
namespace {

using Kind = ReportMessage::Kind;

std::vector<ReportMessage> feed_all(ReportReader& r, const std::string& bytes) {
    return r.feed(bytes.data(), bytes.size());
}

std::string le_double(double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
    return out;
}

TEST(ReportProtocol, ParsesEveryTextLine) {
    ReportReader r;
    auto m = feed_all(r,
                      "r 32 0.0125\nw 1.5\nm torch_version 1.13.1 cpu\nready\nend\nhello n2 3 "
                      "0-3 c0ffee\nexit 139 killed by SIGSEGV\n");
    ASSERT_EQ(m.size(), 7u);
    EXPECT_EQ(m[0].kind, Kind::kRecords);
    ASSERT_EQ(m[0].records.size(), 1u);
    EXPECT_DOUBLE_EQ(m[0].records[0].samples, 32);
    EXPECT_DOUBLE_EQ(m[0].records[0].seconds, 0.0125);
    EXPECT_EQ(m[1].kind, Kind::kWindow);
    EXPECT_DOUBLE_EQ(m[1].window, 1.5);
    EXPECT_EQ(m[2].kind, Kind::kMeta);
    EXPECT_EQ(m[2].key, "torch_version");
    EXPECT_EQ(m[2].value, "1.13.1 cpu");
    EXPECT_EQ(m[3].kind, Kind::kReady);
    EXPECT_EQ(m[4].kind, Kind::kEnd);
    EXPECT_EQ(m[5].kind, Kind::kHello);
    EXPECT_EQ(m[5].key, "n2");
    EXPECT_EQ(m[5].value, "3");
    EXPECT_EQ(m[5].cpus, "0-3");
    EXPECT_EQ(m[6].kind, Kind::kExit);
    EXPECT_EQ(m[6].code, 139);
    EXPECT_EQ(m[5].job_key, "c0ffee");
    EXPECT_EQ(m[6].kind, Kind::kExit);
    EXPECT_EQ(m[6].code, 139);
    EXPECT_EQ(m[6].value, "killed by SIGSEGV");
    EXPECT_EQ(r.pending(), 0u);
}

TEST(ReportProtocol, LinesSplitAcrossChunksAreJoined) {
    ReportReader r;
    EXPECT_TRUE(feed_all(r, "r 1").empty());
    EXPECT_TRUE(feed_all(r, "6 0.").empty());
    EXPECT_GT(r.pending(), 0u);
    auto m = feed_all(r, "5\r\n");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_DOUBLE_EQ(m[0].records[0].samples, 16);
    EXPECT_DOUBLE_EQ(m[0].records[0].seconds, 0.5);
}

TEST(ReportProtocol, BinaryFrameCarriesSamplesThenLatencies) {
    std::string frame = "b 3\n";
    for (double s : {1.0, 2.0, 3.0}) frame += le_double(s);
    for (double t : {0.25, 0.5, 0.125}) frame += le_double(t);
    frame += "end\n";
    // Fed one byte at a time: the frame must survive any chunking.
    ReportReader r;
    std::vector<ReportMessage> all;
    for (char c : frame)
        for (auto& m : r.feed(&c, 1)) all.push_back(std::move(m));
    ASSERT_EQ(all.size(), 2u);
    ASSERT_EQ(all[0].records.size(), 3u);
    EXPECT_DOUBLE_EQ(all[0].records[1].samples, 2.0);
    EXPECT_DOUBLE_EQ(all[0].records[1].seconds, 0.5);
    EXPECT_DOUBLE_EQ(all[0].records[2].seconds, 0.125);
    EXPECT_EQ(all[1].kind, Kind::kEnd);
}

TEST(ReportProtocol, BadBinaryRecordsAreDroppedAndCounted) {
    std::string frame = "b 2\n" + le_double(4) + le_double(-1) + le_double(0.1) + le_double(0.2);
    ReportReader r;
    auto m = feed_all(r, frame);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].records.size(), 1u);
    EXPECT_EQ(m[1].kind, Kind::kMalformed);
}

TEST(ReportProtocol, MalformedLinesAreReportedNotFatal) {
    ReportReader r;
    auto m = feed_all(r,
                      "r 1\nr x 0.1\nr 1 -0.5\nr 1 nan\nb 0\nb 1.5\nhello a 1 0\nhello a -1 0 k\n"
                      "exit 300 x\nexit 1\nbogus\n\nr 2 0.25\n");
    ASSERT_EQ(m.size(), 12u);
    for (int i = 0; i < 11; ++i) EXPECT_EQ(m[i].kind, Kind::kMalformed) << i;
    EXPECT_FALSE(m[0].error.empty());
    EXPECT_EQ(m[11].kind, Kind::kRecords);
    EXPECT_DOUBLE_EQ(m[11].records[0].seconds, 0.25);
}

TEST(ReportProtocol, OverlongLineIsDroppedOnceAndParsingGoesOn) {
    ReportReader r;
    auto first = feed_all(r, std::string(ReportReader::kMaxLine + 10, 'x'));
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].kind, Kind::kMalformed);
    EXPECT_TRUE(feed_all(r, std::string(100000, 'y')).empty());  // still the same line
    EXPECT_EQ(r.pending(), 0u);                                  // and nothing hoarded
    auto next = feed_all(r, "zz\nr 3 0.5\n");
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].kind, Kind::kRecords);
}

}  // namespace
}  // namespace ipex::launcher
