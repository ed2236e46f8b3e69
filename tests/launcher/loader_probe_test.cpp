// loader_finds asks this machine's real dynamic loader.
#include "loader_probe.h"

#include <gtest/gtest.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using ipex::launcher::loader_finds;

namespace {

const ipex::allocator::Environment kNoLibraryPath{{"PATH", "/usr/bin:/bin"}};

// A scratch folder, removed with everything in it.
struct ScratchDir {
    std::filesystem::path path;
    ScratchDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "loader-probe-XXXXXX").string();
        path = mkdtemp(pattern.data());
    }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

// Where the loader found libm.so.6 for this test program (which uses it).
std::string loaded_libm() {
    std::string path;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
            const std::string name = info->dlpi_name;
            if (name.size() >= 10 && name.compare(name.size() - 10, 10, "/libm.so.6") == 0)
                *static_cast<std::string*>(out) = name;
            return 0;
        },
        &path);
    return path;
}

}  // namespace

TEST(LoaderProbe, ALibraryTheLoaderFindsIsFoundOneItDoesNotIsNot) {
    EXPECT_EQ(loader_finds("/bin/sh", "libm.so.6", kNoLibraryPath), std::optional<bool>(true));
    EXPECT_EQ(loader_finds("/bin/sh", "libipexrun-no-such-library.so", kNoLibraryPath),
              std::optional<bool>(false));
}

TEST(LoaderProbe, TheProgramsEnvironmentCounts) {
    ScratchDir dir;
    // Any loadable library under a name of its own, in a folder only LD_LIBRARY_PATH names.
    const std::string libm = loaded_libm();
    ASSERT_FALSE(libm.empty());
    std::filesystem::copy_file(libm, dir.path / "libipexrun-copy.so");
    EXPECT_EQ(loader_finds("/bin/sh", "libipexrun-copy.so", kNoLibraryPath),
              std::optional<bool>(false));
    auto env = kNoLibraryPath;
    env["LD_LIBRARY_PATH"] = dir.path.string();
    EXPECT_EQ(loader_finds("/bin/sh", "libipexrun-copy.so", env), std::optional<bool>(true));
}

TEST(LoaderProbe, AProgramTheLoaderDoesNotStartCannotTell) {
    ScratchDir dir;
    const auto script = dir.path / "script";
    std::ofstream(script) << "#!/bin/sh\necho hi\n";
    chmod(script.c_str(), 0755);
    EXPECT_EQ(loader_finds(script.string(), "libm.so.6", kNoLibraryPath), std::nullopt);
    EXPECT_EQ(loader_finds((dir.path / "missing").string(), "libm.so.6", kNoLibraryPath),
              std::nullopt);
    // Statically linked on Debian: no loader ever reads its LD_PRELOAD.
    if (access("/sbin/ldconfig", X_OK) == 0) {
        EXPECT_EQ(loader_finds("/sbin/ldconfig", "libm.so.6", kNoLibraryPath), std::nullopt);
    }
}
