#include "report_protocol.h"

#include "finite_number.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ipex::launcher {
namespace {

using Kind = ReportMessage::Kind;

ReportMessage malformed(const std::string& why) {
    ReportMessage m;
    m.kind = Kind::kMalformed;
    m.error = why;
    return m;
}

// A whole field as a finite number >= 0, else false.
bool parse_amount(const std::string& field, double& out) {
    const auto value = parse_finite_number(field);
    if (!value || *value < 0) return false;
    out = *value;
    return true;
}

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> fields;
    std::istringstream in(line);
    for (std::string f; in >> f;) fields.push_back(f);
    return fields;
}

bool valid_record(double samples, double seconds) {
    return std::isfinite(samples) && std::isfinite(seconds) && samples >= 0 && seconds >= 0;
}

double read_le_double(const char* p) {
    std::uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

}  // namespace

void ReportReader::parse_line(const std::string& line, std::vector<ReportMessage>& out) {
    const std::vector<std::string> f = split(line);
    if (f.empty()) return;  // blank lines are harmless
    const std::string& verb = f[0];
    ReportMessage m;
    if (verb == "r" && f.size() == 3) {
        BatchRecord r;
        if (!parse_amount(f[1], r.samples) || !parse_amount(f[2], r.seconds))
            return out.push_back(malformed("bad numbers in record '" + line + "'"));
        m.kind = Kind::kRecords;
        m.records.push_back(r);
    } else if (verb == "b" && f.size() == 2) {
        double n = 0;
        if (!parse_amount(f[1], n) || n != std::floor(n) || n < 1 || n > kMaxFrameRecords)
            return out.push_back(malformed("bad binary frame size in '" + line + "'"));
        frame_records_ = static_cast<std::size_t>(n);
        return;
    } else if (verb == "w" && f.size() == 2) {
        if (!parse_amount(f[1], m.window))
            return out.push_back(malformed("bad time in '" + line + "'"));
        m.kind = Kind::kWindow;
    } else if (verb == "m" && f.size() >= 2) {
        m.kind = Kind::kMeta;
        m.key = f[1];
        for (std::size_t i = 2; i < f.size(); ++i) m.value += (i > 2 ? " " : "") + f[i];
    } else if (verb == "ready" && f.size() == 1) {
        m.kind = Kind::kReady;
    } else if (verb == "end" && f.size() == 1) {
        m.kind = Kind::kEnd;
    } else if (verb == "hello" && f.size() == 5) {
        double rank = 0;
        if (!parse_amount(f[2], rank) || rank != std::floor(rank) || rank > 1e9)
            return out.push_back(malformed("bad rank in '" + line + "'"));
        m.kind = Kind::kHello;
        m.key = f[1];
        m.value = std::to_string(static_cast<long>(rank));  // "1e2" says 100
        m.cpus = f[3];
        m.job_key = f[4];
    } else if (verb == "exit" && f.size() >= 3) {
        double code = 0;
        if (!parse_amount(f[1], code) || code != std::floor(code) || code > 255)
            return out.push_back(malformed("bad exit code in '" + line + "'"));
        m.kind = Kind::kExit;
        m.code = static_cast<int>(code);
        for (std::size_t i = 2; i < f.size(); ++i) m.value += (i > 2 ? " " : "") + f[i];
    } else {
        return out.push_back(malformed("unknown line '" + line + "'"));
    }
    out.push_back(std::move(m));
}

std::vector<ReportMessage> ReportReader::feed(const char* data, std::size_t size) {
    std::vector<ReportMessage> out;
    buffer_.append(data, size);
    for (;;) {
        const std::size_t available = buffer_.size() - consumed_;
        if (frame_records_ > 0) {
            const std::size_t need = frame_records_ * 16;
            if (available < need) break;
            const char* base = buffer_.data() + consumed_;
            ReportMessage m;
            m.kind = Kind::kRecords;
            m.records.reserve(frame_records_);
            std::size_t invalid = 0;
            for (std::size_t i = 0; i < frame_records_; ++i) {
                BatchRecord r{read_le_double(base + 8 * i),
                              read_le_double(base + 8 * (frame_records_ + i))};
                if (valid_record(r.samples, r.seconds))
                    m.records.push_back(r);
                else
                    ++invalid;
            }
            consumed_ += need;
            frame_records_ = 0;
            if (!m.records.empty()) out.push_back(std::move(m));
            if (invalid)
                out.push_back(
                    malformed(std::to_string(invalid) +
                              " record(s) of a binary frame were negative or not finite"));
            continue;
        }
        const std::size_t eol = buffer_.find('\n', consumed_);
        if (eol == std::string::npos) {
            if (available > kMaxLine && !skipping_) {
                out.push_back(malformed("a line longer than " + std::to_string(kMaxLine) +
                                        " bytes was dropped"));
                skipping_ = true;
            }
            if (skipping_) consumed_ = buffer_.size();
            break;
        }
        std::string line = buffer_.substr(consumed_, eol - consumed_);
        consumed_ = eol + 1;
        if (skipping_) {
            skipping_ = false;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > kMaxLine) {
            out.push_back(
                malformed("a line longer than " + std::to_string(kMaxLine) + " bytes was dropped"));
            continue;
        }
        parse_line(line, out);
    }
    if (consumed_ > 0 && consumed_ * 2 >= buffer_.size()) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    return out;
}

}  // namespace ipex::launcher
