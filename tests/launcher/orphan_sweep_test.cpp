#include "orphan_sweep.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace ipex::launcher {
namespace {

// Feeds `text` to a fresh finder in pieces of `piece` bytes.
bool found_in_pieces(const std::string& needle, const std::string& text, std::size_t piece) {
    TextFinder finder(needle.data(), needle.size());
    bool found = false;
    for (std::size_t at = 0; at < text.size(); at += piece)
        found = finder.feed(text.data() + at, std::min(piece, text.size() - at));
    return found;
}

TEST(RunIdValue, IsTheOwnIdUnlessOneWasInherited) {
    EXPECT_EQ(run_id_value(nullptr, "ab12"), "ab12");
    EXPECT_EQ(run_id_value("", "ab12"), "ab12");
    EXPECT_EQ(run_id_value("ffee", "ab12"), "ffee ab12");
    EXPECT_EQ(run_id_value("00 ffee", "ab12"), "00 ffee ab12");
}

TEST(TextFinder, FindsTheTextAnywhereAndInEveryPieceSize) {
    const std::string id = "IPEXRUN_RUN_ID=0f3a";
    const std::string environment =
        std::string("PATH=/bin\0HOME=/root\0", 21) + id + std::string("\0X=1\0", 5);
    for (std::size_t piece = 1; piece <= environment.size(); ++piece) {
        EXPECT_TRUE(found_in_pieces(id, environment, piece)) << "pieces of " << piece;
        EXPECT_TRUE(found_in_pieces("0f3a", environment, piece)) << "pieces of " << piece;
    }
}

TEST(TextFinder, FollowsPartialMatchesThatOverlap) {
    // A naive matcher that restarts after a mismatch misses these.
    EXPECT_TRUE(found_in_pieces("aab", "aaab", 1));
    EXPECT_TRUE(found_in_pieces("abab", "abaabab", 3));
    EXPECT_TRUE(found_in_pieces("abcabd", "abcabcabd", 2));
    EXPECT_TRUE(found_in_pieces("aaaa", "aaabaaaa", 1));
}

TEST(TextFinder, DoesNotFindWhatIsNotThere) {
    EXPECT_FALSE(found_in_pieces("aab", "abaxabab", 1));
    EXPECT_FALSE(found_in_pieces("0f3a", "0f3", 2));
    EXPECT_FALSE(found_in_pieces("0f3a", "", 1));
    // Another run's id differs in its last digit only.
    EXPECT_FALSE(found_in_pieces("5c01d9", "IPEXRUN_RUN_ID=5c01d8", 4));
}

TEST(TextFinder, StartsOverAfterReset) {
    TextFinder finder("abc", 3);
    EXPECT_FALSE(finder.feed("xab", 3));
    finder.reset();
    EXPECT_FALSE(finder.feed("c", 1));  // "ab" + "c" would have matched without the reset
    EXPECT_TRUE(finder.feed("abc", 3));
    EXPECT_TRUE(finder.found());
    finder.reset();
    EXPECT_FALSE(finder.found());
}

TEST(TextFinder, NeverFindsAnEmptyOrOverlongText) {
    TextFinder empty("", 0);
    EXPECT_FALSE(empty.feed("anything", 8));
    const std::string overlong(TextFinder::kMaxLength + 1, 'a');
    TextFinder too_long(overlong.data(), overlong.size());
    const std::string haystack(200, 'a');
    EXPECT_FALSE(too_long.feed(haystack.data(), haystack.size()));
    const std::string longest(TextFinder::kMaxLength, 'a');
    EXPECT_TRUE(found_in_pieces(longest, haystack, 7));
}

TEST(SweepRounds, EndsAfterTwoQuietPassesInARow) {
    SweepRounds rounds;
    EXPECT_TRUE(rounds.another(3, 0));
    EXPECT_TRUE(rounds.another(0, 0));
    EXPECT_TRUE(rounds.another(1, 0));  // a late fork: quiet passes count from zero again
    EXPECT_TRUE(rounds.another(0, 0));
    EXPECT_FALSE(rounds.another(0, 0));
    EXPECT_EQ(rounds.passes(), 5);
}

TEST(SweepRounds, APassThatSawAnExecInProgressIsNotQuiet) {
    SweepRounds rounds;
    EXPECT_TRUE(rounds.another(0, 0));
    EXPECT_TRUE(rounds.another(0, 1));
    EXPECT_TRUE(rounds.another(0, 1));
    EXPECT_TRUE(rounds.another(1, 0));  // the exec finished: the process holds the id
    EXPECT_TRUE(rounds.another(0, 0));
    EXPECT_FALSE(rounds.another(0, 0));
}

TEST(SweepRounds, AnEmptyRunTakesTwoPasses) {
    SweepRounds rounds;
    EXPECT_TRUE(rounds.another(0, 0));
    EXPECT_FALSE(rounds.another(0, 0));
}

TEST(SweepRounds, GivesUpAfterTheLastPassEvenIfProcessesKeepAppearing) {
    for (const auto& [found, undecided] : {std::pair{1, 0}, std::pair{0, 1}}) {
        SweepRounds rounds;
        int passes = 1;
        while (rounds.another(found, undecided)) ++passes;
        EXPECT_EQ(passes, SweepRounds::kMaxPasses);
    }
}

// A /proc/<pid>/stat line as Linux 6 writes it (52 fields), with the fields that matter set.
std::string stat_line(const std::string& comm, char state, unsigned long flags,
                      unsigned long env_end, int fields = 52) {
    std::string line = "4242 (" + comm + ") " + state;
    for (int field = 4; field <= fields; ++field) {
        unsigned long value = 7;
        if (field == 9) value = flags;
        if (field == 50) value = env_end == 0 ? 0 : env_end - 100;
        if (field == 51) value = env_end;
        line += " " + std::to_string(value);
    }
    return line + "\n";
}

bool in_exec(const std::string& line) {
    return exec_in_progress(line.data(), line.size());
}

TEST(ExecInProgress, IsAProcessWithMemoryButNoEnvironmentYet) {
    EXPECT_TRUE(in_exec(stat_line("sleep", 'R', 0x400000, 0)));
    EXPECT_TRUE(in_exec(stat_line("sleep", 'D', 0x400100, 0)));
    EXPECT_FALSE(in_exec(stat_line("sleep", 'S', 0x400000, 140723042164687)));
}

TEST(ExecInProgress, IsNeverAZombieOrAKernelThread) {
    EXPECT_FALSE(in_exec(stat_line("sleep", 'Z', 0x400000, 0)));
    EXPECT_FALSE(in_exec(stat_line("sleep", 'X', 0x400000, 0)));
    EXPECT_FALSE(in_exec(stat_line("kworker/0:1", 'I', 0x208040, 0)));
}

TEST(ExecInProgress, ReadsFieldsAfterTheLastParenthesisOfTheName) {
    EXPECT_TRUE(in_exec(stat_line("a) Z 1 (b", 'S', 0x400000, 0)));
    EXPECT_FALSE(in_exec(stat_line("x) S 1 2 3 4 5 0x208040 (y", 'Z', 0x400000, 0)));
}

TEST(ExecInProgress, IsFalseWhenTheTextEndsEarly) {
    EXPECT_FALSE(in_exec(stat_line("sleep", 'R', 0, 0, 49)));  // kernels before 3.5
    EXPECT_FALSE(in_exec("4242 (sleep"));
    EXPECT_FALSE(in_exec(""));
}

TEST(PidFromName, AcceptsOnlyProcessDirectories) {
    EXPECT_EQ(pid_from_name("1"), 1);
    EXPECT_EQ(pid_from_name("4194304"), 4194304);
    EXPECT_EQ(pid_from_name("self"), 0);
    EXPECT_EQ(pid_from_name("12a"), 0);
    EXPECT_EQ(pid_from_name(""), 0);
    EXPECT_EQ(pid_from_name("4194305"), 0);
    EXPECT_EQ(pid_from_name("99999999999999999999999"), 0);
}

std::vector<int> read_pids(const std::string& text, std::size_t piece) {
    PidListReader reader;
    std::vector<int> pids;
    int out[64];
    for (std::size_t at = 0; at < text.size(); at += piece) {
        const std::size_t size = std::min(piece, text.size() - at);
        EXPECT_LE(size / 2 + 1, std::size(out));
        const std::size_t got = reader.feed(text.data() + at, size, out);
        pids.insert(pids.end(), out, out + got);
    }
    pids.insert(pids.end(), out, out + reader.finish(out));
    return pids;
}

TEST(PidListReader, ReadsNumbersSplitAcrossPieces) {
    const std::vector<int> expected = {12, 4567, 3, 890123};
    for (std::size_t piece = 1; piece <= 20; ++piece) {
        EXPECT_EQ(read_pids("12 4567 3 890123 ", piece), expected) << "pieces of " << piece;
        EXPECT_EQ(read_pids("12 4567 3 890123", piece), expected) << "no final space";
    }
    EXPECT_EQ(read_pids("", 4), std::vector<int>{});
    EXPECT_EQ(read_pids("  \n", 1), std::vector<int>{});
}

TEST(PidListReader, SkipsWhatCannotBeAPid) {
    EXPECT_EQ(read_pids("0 7 99999999999999999999 8", 3), (std::vector<int>{7, 8}));
}

}  // namespace
}  // namespace ipex::launcher
