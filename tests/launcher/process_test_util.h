// Helpers for tests that really start processes: a scratch directory, file reading, and
// capture of the test process's own stdout/stderr (where the supervisor writes).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipex::launcher::testing {

class TempDir {
  public:
    TempDir() {
        char pattern[] = "/tmp/ipexrun-test-XXXXXX";
        if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Points fd 1 and 2 at files while alive; stdout()/stderr() give what was written.
class CaptureOutput {
  public:
    CaptureOutput() {
        std::fflush(stdout);
        std::fflush(stderr);
        saved_[0] = dup(1);
        saved_[1] = dup(2);
        redirect(1, dir_ / "stdout");
        redirect(2, dir_ / "stderr");
    }
    ~CaptureOutput() { restore(); }

    void restore() {
        if (saved_[0] < 0) return;
        std::fflush(stdout);
        std::fflush(stderr);
        dup2(saved_[0], 1);
        dup2(saved_[1], 2);
        close(saved_[0]);
        close(saved_[1]);
        saved_[0] = saved_[1] = -1;
    }
    std::string out() const { return read_file(dir_ / "stdout"); }
    std::string err() const { return read_file(dir_ / "stderr"); }

  private:
    static void redirect(int fd, const std::string& path) {
        FILE* file = std::fopen(path.c_str(), "w");
        dup2(fileno(file), fd);
        std::fclose(file);
    }

    TempDir dir_;
    int saved_[2] = {-1, -1};
};

}  // namespace ipex::launcher::testing
