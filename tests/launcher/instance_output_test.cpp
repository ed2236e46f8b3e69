#include "instance_output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <algorithm>
#include <string>
#include <vector>

#include "process_test_util.h"

using ipex::launcher::InstanceOutput;
using ipex::launcher::OutputStream;
using ipex::launcher::testing::read_file;
using ipex::launcher::testing::TempDir;

namespace {

// An InstanceOutput whose terminal and log are files of a scratch directory.
struct OutputFiles {
    TempDir dir;
    int out = open((dir / "out").c_str(), O_WRONLY | O_CREAT, 0644);
    int err = open((dir / "err").c_str(), O_WRONLY | O_CREAT, 0644);
    int log = open((dir / "log").c_str(), O_WRONLY | O_CREAT, 0644);
    ~OutputFiles() {
        close(out);
        close(err);
        close(log);
    }
    std::string text(const char* name) { return read_file(dir / name); }
};

void add(InstanceOutput& output, OutputStream stream, const std::string& text) {
    output.add(stream, text.data(), text.size());
}

}  // namespace

TEST(InstanceOutput, PrefixesCompleteLinesAndHoldsPartialOnes) {
    OutputFiles files;
    InstanceOutput output(3, files.log, files.out, files.err);
    add(output, OutputStream::kStdout, "one\ntw");
    EXPECT_EQ(files.text("out"), "[3] one\n");
    add(output, OutputStream::kStdout, "o\nthree");
    EXPECT_EQ(files.text("out"), "[3] one\n[3] two\n");
    output.finish(OutputStream::kStdout);
    EXPECT_EQ(files.text("out"), "[3] one\n[3] two\n[3] three\n");
    EXPECT_EQ(files.text("log"), "one\ntwo\nthree");  // exactly what was written
    EXPECT_EQ(files.text("err"), "");
}

TEST(InstanceOutput, StreamsStaySeparateOnTheTerminalAndMeetLineByLineInTheLog) {
    OutputFiles files;
    InstanceOutput output(0, files.log, files.out, files.err);
    add(output, OutputStream::kStdout, "out-a");
    add(output, OutputStream::kStderr, "err-a\n");
    add(output, OutputStream::kStdout, "\n");
    output.finish(OutputStream::kStdout);
    output.finish(OutputStream::kStderr);
    EXPECT_EQ(files.text("out"), "[0] out-a\n");
    EXPECT_EQ(files.text("err"), "[0] err-a\n");
    EXPECT_EQ(files.text("log"), "err-a\nout-a\n");  // no "out-err-a" mixture
}

TEST(InstanceOutput, EmptyStreamWritesNothing) {
    OutputFiles files;
    InstanceOutput output(1, files.log, files.out, files.err);
    output.finish(OutputStream::kStdout);
    output.finish(OutputStream::kStderr);
    EXPECT_EQ(files.text("out"), "");
    EXPECT_EQ(files.text("log"), "");
}

TEST(InstanceOutput, OverlongLineIsPassedOnInPiecesButLoggedAsItWas) {
    OutputFiles files;
    InstanceOutput output(2, files.log, files.out, files.err);
    const std::string line(InstanceOutput::kMaxLine + 10, 'x');
    add(output, OutputStream::kStdout, line);
    const std::string first = "[2] " + std::string(InstanceOutput::kMaxLine, 'x') + "\n";
    EXPECT_EQ(files.text("out"), first);
    output.finish(OutputStream::kStdout);
    EXPECT_EQ(files.text("out"), first + "[2] xxxxxxxxxx\n");
    EXPECT_EQ(files.text("log"), line);
}

TEST(InstanceOutput, BinaryOutputIsLoggedByteForByte) {
    OutputFiles files;
    InstanceOutput output(0, files.log, files.out, files.err);
    std::string bytes;
    for (int i = 0; i < 3 * 65536 + 7; ++i) bytes += static_cast<char>((i * 131 + i / 7) & 0xff);
    for (std::size_t at = 0; at < bytes.size(); at += 4093)  // reads of any size
        output.add(OutputStream::kStdout, bytes.data() + at,
                   std::min<std::size_t>(4093, bytes.size() - at));
    output.finish(OutputStream::kStdout);
    EXPECT_EQ(files.text("log"), bytes);
}

TEST(InstanceOutput, CarriageReturnEndsALineSoProgressBarsStayLive) {
    OutputFiles files;
    InstanceOutput output(0, files.log, files.out, files.err);
    add(output, OutputStream::kStderr, " 10%\r 20%\r");
    EXPECT_EQ(files.text("err"), "[0]  10%\r[0]  20%\r");
    add(output, OutputStream::kStderr, "done\r\nnext\n");
    EXPECT_EQ(files.text("err"), "[0]  10%\r[0]  20%\r[0] done\r\n[0] next\n");
    EXPECT_EQ(files.text("log"), " 10%\r 20%\rdone\r\nnext\n");
}

TEST(InstanceOutput, HeldLinesComeOutInOrderOnRelease) {
    OutputFiles files;
    InstanceOutput output(1, files.log, files.out, files.err);
    std::vector<std::string> seen;
    output.observe_stderr([&seen](const std::string& line) { seen.push_back(line); });
    output.hold();
    add(output, OutputStream::kStdout, "early\n");
    add(output, OutputStream::kStderr, "warned\n");
    EXPECT_EQ(files.text("out"), "");
    EXPECT_EQ(files.text("log"), "");
    EXPECT_TRUE(seen.empty());
    output.release();
    add(output, OutputStream::kStdout, "late\n");
    EXPECT_EQ(files.text("out"), "[1] early\n[1] late\n");
    EXPECT_EQ(files.text("err"), "[1] warned\n");
    EXPECT_EQ(files.text("log"), "early\nwarned\nlate\n");
    EXPECT_EQ(seen, std::vector<std::string>{"warned"});
}

TEST(InstanceOutput, DroppedOutputNeverComesOut) {
    OutputFiles files;
    InstanceOutput output(1, files.log, files.out, files.err);
    output.hold();
    add(output, OutputStream::kStderr, "mpi complaint\n");
    output.drop();
    add(output, OutputStream::kStderr, "more\n");
    output.release();  // too late: dropped stays dropped
    output.finish(OutputStream::kStderr);
    EXPECT_EQ(files.text("err"), "");
    EXPECT_EQ(files.text("log"), "");
}
