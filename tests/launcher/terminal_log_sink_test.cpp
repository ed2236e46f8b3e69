#include "terminal_log_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include "log_format.h"
#include "signals.h"
#include "terminal_write.h"

using ipex::launcher::TerminalLogSink;

namespace {

// A pipe whose buffer is already full: the next write has to wait for a reader.
struct FullPipe {
    int read_end = -1, write_end = -1;
    std::size_t filled = 0;
    FullPipe() {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe");
        read_end = fds[0];
        write_end = fds[1];
        fcntl(write_end, F_SETFL, O_NONBLOCK);
        const std::string block(4096, 'x');
        for (ssize_t n; (n = write(write_end, block.data(), block.size())) > 0;) filled += n;
        fcntl(write_end, F_SETFL, 0);
    }
    ~FullPipe() {
        if (read_end >= 0) close(read_end);
        if (write_end >= 0) close(write_end);
    }
};

std::shared_ptr<spdlog::logger> logger_on(std::shared_ptr<TerminalLogSink> sink) {
    auto logger = std::make_shared<spdlog::logger>("sink-test", std::move(sink));
    logger->set_formatter(ipex::launcher::one_line_formatter("ipexrun: %^%l%$: %v"));
    return logger;
}

}  // namespace

TEST(TerminalLogSink, AReaderThatReadsLateGetsEveryLine) {
    FullPipe pipe;
    std::string received;
    std::thread reader([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        char buffer[4096];
        for (ssize_t n; (n = read(pipe.read_end, buffer, sizeof buffer)) > 0;)
            received.append(buffer, static_cast<std::size_t>(n));
    });
    auto sink = std::make_shared<TerminalLogSink>(pipe.write_end);
    auto log = logger_on(sink);
    log->info("first");
    log->warn("second\nline");
    close(pipe.write_end);
    pipe.write_end = -1;
    reader.join();
    EXPECT_EQ(sink->error(), 0);
    EXPECT_EQ(received, std::string(pipe.filled, 'x') +
                            "ipexrun: info: first\nipexrun: warning: second\\nline\n");
}

TEST(TerminalLogSink, AfterAStopSignalAReaderThatTakesNothingIsGivenUpOn) {
    FullPipe pipe;
    ipex::launcher::SignalWatch signals;
    raise(SIGTERM);
    ASSERT_TRUE(ipex::launcher::stop_signal_arrived());
    auto sink = std::make_shared<TerminalLogSink>(pipe.write_end);
    auto log = logger_on(sink);
    const auto start = std::chrono::steady_clock::now();
    log->warn("received SIGTERM");
    log->error("and more");
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(sink->error(), ipex::launcher::kTerminalStalled);
    // One stall limit for the first line; the second is dropped at once. Generous for a busy
    // machine, yet far below "for ever".
    EXPECT_GE(waited, std::chrono::milliseconds(ipex::launcher::kStallLimitMs));
    EXPECT_LT(waited, std::chrono::milliseconds(ipex::launcher::kStallLimitMs * 10));
}

TEST(TerminalLogSink, AClosedReaderIsAnErrorAndLaterLinesAreDropped) {
    FullPipe pipe;
    close(pipe.read_end);
    pipe.read_end = -1;
    ipex::launcher::SignalWatch signals;  // SIGPIPE ignored, as in the launcher
    auto sink = std::make_shared<TerminalLogSink>(pipe.write_end);
    auto log = logger_on(sink);
    log->error("nobody hears this");
    log->error("nor this");
    EXPECT_EQ(sink->error(), EPIPE);
}
