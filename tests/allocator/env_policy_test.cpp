#include "ipex/allocator/env_policy.h"

#include <gtest/gtest.h>

#include <set>

using namespace ipex::allocator;

namespace {

const AvailableLibraries kAll{"/usr/lib/libtcmalloc.so.4", "/usr/lib/libjemalloc.so.2",
                              "/usr/lib/libiomp5.so"};

FileExists files(std::set<std::string> existing) {
    return [existing](const std::string& p) { return existing.count(p) > 0; };
}

EnvPlan plan(const EnvRequest& r, const AvailableLibraries& libs = kAll,
             const Environment& user = {}, const FileExists& exists = files({}),
             std::vector<std::vector<int>> cpus = {{0, 1, 2}, {3, 4}}) {
    return plan_environment(r, libs, user, exists, cpus);
}

std::string get(const Environment& env, const std::string& name) {
    auto it = env.find(name);
    return it == env.end() ? "<unset>" : it->second;
}

}  // namespace

TEST(EnvPolicy, AutoPrefersTcmallocAndIntelOpenMp) {
    const EnvPlan p = plan({});
    EXPECT_EQ(p.allocator, "tcmalloc");
    EXPECT_EQ(p.omp_runtime, "intel");
    EXPECT_EQ(get(p.instances[0], "LD_PRELOAD"), "/usr/lib/libtcmalloc.so.4:/usr/lib/libiomp5.so");
    EXPECT_EQ(get(p.instances[0], "KMP_AFFINITY"), "granularity=fine,compact,1,0");
    EXPECT_EQ(get(p.instances[0], "KMP_BLOCKTIME"), "1");
    EXPECT_EQ(get(p.instances[0], "MALLOC_CONF"), "<unset>");
}

TEST(EnvPolicy, OmpNumThreadsIsEachInstanceSize) {
    const EnvPlan p = plan({});
    EXPECT_EQ(get(p.instances[0], "OMP_NUM_THREADS"), "3");
    EXPECT_EQ(get(p.instances[1], "OMP_NUM_THREADS"), "2");
}

TEST(EnvPolicy, JemallocGetsItsConfigurationAndBenchmarkVariant) {
    EnvRequest r;
    r.allocator = MemoryAllocator::kJemalloc;
    EXPECT_EQ(get(plan(r).instances[0], "MALLOC_CONF"),
              "oversize_threshold:1,background_thread:true,metadata_thp:auto");
    r.benchmark = true;
    EXPECT_EQ(get(plan(r).instances[0], "MALLOC_CONF"),
              "oversize_threshold:1,background_thread:false,metadata_thp:always,"
              "dirty_decay_ms:-1,muzzy_decay_ms:-1");
}

TEST(EnvPolicy, TcmallocKeepsItsDefaultsUnlessBenchmarking) {
    EnvRequest r;
    r.allocator = MemoryAllocator::kTcmalloc;
    EXPECT_EQ(get(plan(r).instances[0], "TCMALLOC_RELEASE_RATE"), "<unset>");
    EXPECT_EQ(get(plan(r).instances[0], "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES"), "<unset>");
    r.benchmark = true;
    EXPECT_EQ(get(plan(r).instances[0], "TCMALLOC_RELEASE_RATE"), "0");
    EXPECT_EQ(get(plan(r).instances[0], "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES"), "268435456");
    EXPECT_EQ(get(plan(r).instances[0], "MALLOC_CONF"), "<unset>");
}

TEST(EnvPolicy, GnuOpenMpGetsPlacesAndBinding) {
    EnvRequest r;
    r.omp = OmpRuntime::kDefault;
    const Environment env = plan(r).instances[1];
    EXPECT_EQ(get(env, "OMP_PROC_BIND"), "CLOSE");
    EXPECT_EQ(get(env, "OMP_PLACES"), "threads");
    EXPECT_EQ(get(env, "OMP_SCHEDULE"), "STATIC");
    EXPECT_EQ(get(env, "KMP_AFFINITY"), "<unset>");
    EXPECT_EQ(get(env, "LD_PRELOAD"), "/usr/lib/libtcmalloc.so.4");
}

TEST(EnvPolicy, DefaultChoicesPreloadNothing) {
    EnvRequest r;
    r.allocator = MemoryAllocator::kDefault;
    r.omp = OmpRuntime::kDefault;
    EXPECT_EQ(get(plan(r).instances[0], "LD_PRELOAD"), "<unset>");
    EXPECT_EQ(plan({}, AvailableLibraries{}).allocator, "default");
}

TEST(EnvPolicy, MissingExplicitLibraryIsAnError) {
    EnvRequest r;
    r.allocator = MemoryAllocator::kJemalloc;
    EXPECT_THROW(plan(r, AvailableLibraries{}), EnvError);
    r = {};
    r.omp = OmpRuntime::kIntel;
    EXPECT_THROW(plan(r, AvailableLibraries{}), EnvError);
}

TEST(EnvPolicy, UsersPreloadIsKeptMissingEntriesDropped) {
    Environment user{{"LD_PRELOAD", "/opt/libmine.so:/gone/libold.so"}};
    const EnvPlan p = plan({}, kAll, user, files({"/opt/libmine.so"}));
    EXPECT_EQ(get(p.instances[0], "LD_PRELOAD"),
              "/opt/libmine.so:/usr/lib/libtcmalloc.so.4:/usr/lib/libiomp5.so");
    ASSERT_EQ(p.warnings.size(), 1u);
    EXPECT_NE(p.warnings[0].find("/gone/libold.so"), std::string::npos);
}

TEST(EnvPolicy, UsersBarePreloadNameIsDroppedOnlyWhenTheLoaderSaysItIsNotFound) {
    Environment user{{"LD_PRELOAD", "libfound.so:libgone.so:libunknown.so"}};
    const LoaderFinds loader = [](const std::string& name) -> std::optional<bool> {
        if (name == "libfound.so") return true;
        if (name == "libgone.so") return false;
        return std::nullopt;  // the loader cannot tell (a static program)
    };
    const EnvPlan p = plan_environment({}, kAll, user, files({}), {{0}}, loader);
    EXPECT_EQ(get(p.instances[0], "LD_PRELOAD"),
              "libfound.so:libunknown.so:/usr/lib/libtcmalloc.so.4:/usr/lib/libiomp5.so");
    ASSERT_EQ(p.warnings.size(), 1u);
    EXPECT_NE(p.warnings[0].find("'libgone.so' is not found by the dynamic loader"),
              std::string::npos)
        << p.warnings[0];
}

TEST(EnvPolicy, UsersPreloadedAllocatorIsTheAutoChoice) {
    Environment user{{"LD_PRELOAD", "/opt/libjemalloc.so.2"}};
    const EnvPlan p = plan({}, kAll, user, files({"/opt/libjemalloc.so.2"}));
    EXPECT_EQ(p.allocator, "jemalloc");
    EXPECT_EQ(get(p.instances[0], "LD_PRELOAD"), "/opt/libjemalloc.so.2:/usr/lib/libiomp5.so");
}

TEST(EnvPolicy, ExplicitChoiceRemovesPreloadedAlternative) {
    Environment user{{"LD_PRELOAD", "/opt/libjemalloc.so.2"}};
    EnvRequest r;
    r.allocator = MemoryAllocator::kTcmalloc;
    r.omp = OmpRuntime::kDefault;
    const EnvPlan p = plan(r, kAll, user, files({"/opt/libjemalloc.so.2"}));
    EXPECT_EQ(get(p.instances[0], "LD_PRELOAD"), "/usr/lib/libtcmalloc.so.4");
    EXPECT_EQ(p.warnings.size(), 1u);
}

TEST(EnvPolicy, PresetVariablesWinWithOneWarning) {
    Environment user{{"KMP_BLOCKTIME", "200"}, {"OMP_NUM_THREADS", "7"}};
    const EnvPlan p = plan({}, kAll, user);
    for (const auto& env : p.instances) {
        EXPECT_EQ(get(env, "KMP_BLOCKTIME"), "<unset>");  // not changed: the user's stays
        EXPECT_EQ(get(env, "OMP_NUM_THREADS"), "<unset>");
    }
    EXPECT_EQ(p.warnings.size(), 2u);  // one per variable, not one per instance
}

TEST(EnvPolicy, AffinityThroughEnvironmentWithoutOverwritingTheUsers) {
    EnvRequest r;
    r.affinity_through_env = true;
    r.omp = OmpRuntime::kDefault;
    EXPECT_EQ(get(plan(r).instances[0], "GOMP_CPU_AFFINITY"), "0-2");
    EXPECT_EQ(get(plan(r).instances[1], "GOMP_CPU_AFFINITY"), "3-4");
    r.omp = OmpRuntime::kIntel;
    EXPECT_EQ(get(plan(r).instances[1], "KMP_AFFINITY"),
              "granularity=fine,proclist=[3-4],explicit");
    const EnvPlan p = plan(r, kAll, {{"KMP_AFFINITY", "verbose,compact"}});
    EXPECT_EQ(get(p.instances[0], "KMP_AFFINITY"), "<unset>");
}

TEST(EnvPolicy, RuntimeLibraryIsPreloadedBeforeTheOpenMPRuntimeWhenItExists) {
    EnvRequest r;
    r.runtime_library = "/usr/local/lib/libipex_runtime.so";
    EXPECT_EQ(get(plan(r, kAll, {}, files({r.runtime_library})).instances[0], "LD_PRELOAD"),
              "/usr/lib/libtcmalloc.so.4:/usr/local/lib/libipex_runtime.so:/usr/lib/libiomp5.so");
    EXPECT_EQ(get(plan(r).instances[0], "LD_PRELOAD"),
              "/usr/lib/libtcmalloc.so.4:/usr/lib/libiomp5.so");
}

TEST(EnvPolicy, RuntimeLibraryGoesBeforeAnOpenMPRuntimeTheUserPreloads) {
    EnvRequest r;
    r.omp = OmpRuntime::kDefault;
    r.allocator = MemoryAllocator::kDefault;
    r.runtime_library = "/usr/local/lib/libipex_runtime.so";
    const Environment user = {{"LD_PRELOAD", "/opt/x/libgomp.so.1"}};
    EXPECT_EQ(
        get(plan(r, kAll, user, files({r.runtime_library, "/opt/x/libgomp.so.1"})).instances[0],
            "LD_PRELOAD"),
        "/usr/local/lib/libipex_runtime.so:/opt/x/libgomp.so.1");
}
