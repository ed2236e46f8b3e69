// The benchmark report protocol between an instance and ipexrun.
//
// ipexrun --benchmark-report (or --benchmark-duration/-iterations, or --sweep) gives every
// instance a connected stream socket as file descriptor 3 and says so in the environment:
// IPEXRUN_REPORT_FD=3. The instance writes ASCII lines ('\n'-terminated, fields separated by
// one space) and may read ipexrun's answers from the same descriptor:
//
//   r <samples> <seconds>   one measured batch: samples processed, its latency in seconds
//                           (decimal numbers, both >= 0; e.g. "r 32 0.01834")
//   b <n>                   n batches in binary: after the line come n little-endian float64
//                           sample counts, then n float64 latencies (what ipex.benchmark
//                           sends: it is cheaper than formatting text)
//   w <seconds>             wall time the measurement has covered so far (latest wins); the
//                           throughput is samples / this, or samples / summed latencies
//                           without it
//   m <key> <value>         metadata for the report (key one word, value the rest of the line)
//   ready                   warm-up is over; ipexrun answers "go" once every instance is
//                           ready (or has ended), so that all instances measure together
//   end                     the measurement finished; a stream that closes without it is
//                           reported as incomplete
//
// Across nodes (ipexrun --nnodes with --benchmark-report), the stream is a TCP connection from
// each rank's ipexrun wrapper to the launching ipexrun (IPEXRUN_REPORT_ADDR=host:port); the
// wrapper adds two lines of its own around the instance's:
//   hello <node> <rank> <cpus> <key>   first: who is reporting (host name, global rank, CPU
//                                      list) and the job's IPEXRUN_REPORT_KEY; a connection
//                                      that starts otherwise, or names a rank that is not in
//                                      the job or has reported already, is closed and counted
//   exit <code> <status>               last: how the instance ended ("exit 139 killed by
//                                      SIGSEGV"); a connection that ends without it is
//                                      reported as "connection lost", its numbers partial
//
// ipexrun to instance:  go   start measuring now.
// The length of the run is in IPEXRUN_BENCHMARK_DURATION (seconds) and
// IPEXRUN_BENCHMARK_ITERATIONS (batches); the program stops by itself when either is reached.
// Unknown or malformed lines are counted and reported once; they never stop a run.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ipex::launcher {

struct BatchRecord {
    double samples = 0;
    double seconds = 0;
};

struct ReportMessage {
    enum class Kind { kRecords, kWindow, kMeta, kReady, kEnd, kHello, kExit, kMalformed };
    Kind kind = Kind::kMalformed;
    std::vector<BatchRecord> records;  // kRecords
    double window = 0;                 // kWindow: seconds
    std::string key, value;            // kMeta; kHello: node, rank; kExit: -, status
    std::string cpus, job_key;         // kHello
    int code = 0;                      // kExit
    std::string error;                 // kMalformed: what was wrong, one line
};

// Turns the bytes of one stream into messages, whatever the chunking.
class ReportReader {
  public:
    std::vector<ReportMessage> feed(const char* data, std::size_t size);
    // Bytes held back: an unterminated line or an incomplete binary frame.
    std::size_t pending() const { return buffer_.size() - consumed_; }

    static constexpr std::size_t kMaxLine = 4096;
    static constexpr std::size_t kMaxFrameRecords = 1 << 20;

  private:
    void parse_line(const std::string& line, std::vector<ReportMessage>& out);

    std::string buffer_;
    std::size_t consumed_ = 0;
    std::size_t frame_records_ = 0;  // > 0: waiting for a binary frame of this many records
    bool skipping_ = false;          // inside an over-long line, until its end
};

}  // namespace ipex::launcher
