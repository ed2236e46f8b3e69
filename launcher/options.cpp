#include "options.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <set>
#include <type_traits>

#include "config_file.h"
#include "ipex/affinity/user_text.h"
#include "option_checks.h"

namespace ipex::launcher {
namespace {

struct UsageError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

constexpr int kMaxGraceSeconds = 3600;

// "--ninstances" → "--ninstances"; "--log-dir" → "--log-dir,--log_dir": every option is
// accepted with dashes and with underscores, plus the old names users still type.
std::string spellings(std::initializer_list<std::string> names) {
    std::vector<std::string> all;
    for (const auto& n : names) {
        std::string underscored = n, dashed = n;
        for (size_t i = 2; i < n.size(); ++i) {
            if (underscored[i] == '-') underscored[i] = '_';
            if (dashed[i] == '_') dashed[i] = '-';
        }
        for (const auto& s : {n, underscored, dashed})
            if (std::find(all.begin(), all.end(), s) == all.end()) all.push_back(s);
    }
    std::string out;
    for (const auto& s : all) out += (out.empty() ? "" : ",") + s;
    return out;
}

bool is_integer(const std::string& s) {
    size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
    return i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(),
                                       [](unsigned char c) { return std::isdigit(c); });
}

bool is_size_list(const std::string& s) {
    std::string part;
    for (char c : s + ",") {
        if (c == ',') {
            if (!is_integer(part)) return false;
            part.clear();
        } else if (c != ' ') {
            part += c;
        }
    }
    return true;
}

// `--ncores-per-instance 5 5 6 prog` gives one size per instance. CLI11 would take "prog"
// as a fourth value, so the sizes are joined into one "5,5,6" argument before parsing.
std::vector<std::string> join_size_lists(int argc, const char* const* argv) {
    static const std::set<std::string> kSizeOptions = {
        "--ncores-per-instance", "--ncores_per_instance", "--ncore_per_instance",
        "--ncore-per-instance"};
    std::vector<std::string> args(argv, argv + argc);
    std::vector<std::string> out;
    for (size_t i = 0; i < args.size(); ++i) {
        out.push_back(args[i]);
        if (!kSizeOptions.count(args[i])) continue;
        if (i + 1 >= args.size()) break;
        std::string joined = args[++i];
        while (i + 1 < args.size() && is_size_list(args[i + 1]) && args[i + 1][0] != '-')
            joined += "," + args[++i];
        out.push_back(joined);
    }
    return out;
}

// The peer's 2.x launcher takes a backend first (`ipexrun cpu --ninstances 2 x.py`); cpu is
// the only one here.
void drop_backend_selector(std::vector<std::string>& args) {
    if (args.size() < 2) return;
    if (args[1] == "cpu")
        args.erase(args.begin() + 1);
    else if (args[1] == "xpu")
        throw UsageError("the xpu backend (Intel GPUs) is not supported: ipexrun launches on CPUs");
}

std::vector<int> parse_sizes(const std::string& text) {
    if (text.empty()) return {};
    std::vector<int> sizes;
    std::string part;
    for (char c : text + ",") {
        if (c == ',') {
            if (!is_integer(part))
                throw UsageError("--ncores-per-instance takes whole numbers, not " +
                                 affinity::quote_text(text));
            if (part.size() > 7)  // no machine has ten million cores; stoi cannot overflow
                throw UsageError("--ncores-per-instance " + part + " is too large");
            sizes.push_back(std::stoi(part));
            part.clear();
        } else if (c != ' ') {
            part += c;
        }
    }
    return sizes;
}

template <typename T>
std::map<std::string, T> choices(std::initializer_list<std::pair<const std::string, T>> items) {
    return std::map<std::string, T>(items);
}

// One titled section of --help. Options added through it are listed under its title;
// --help lists the sections in the order their first option is added.
class HelpSection {
  public:
    HelpSection(CLI::App& app, std::string title) : app_(app), title_(std::move(title)) {}

    template <typename T>
    CLI::Option* option(const std::string& names, T& target, const std::string& help) {
        CLI::Option* added = app_.add_option(names, target, help)->group(title_);
        if constexpr (std::is_integral_v<T>) added->transform(decimal_integer());
        return added;
    }
    CLI::Option* flag(const std::string& names, bool& target, const std::string& help) {
        return app_.add_flag(names, target, help)->group(title_);
    }
    CLI::Option* adopt(CLI::Option* option) { return option->group(title_); }

  private:
    CLI::App& app_;
    std::string title_;
};

// An empty id list is a usage error rather than "all": it is usually a shell variable that
// came out empty.
const CLI::Validator kNotBlankIds = not_blank("ids like 0-3,8");
const CLI::Validator kNotBlankPath = not_blank("a path");

// Option text that only becomes typed LaunchOptions after parsing.
struct RawOptions {
    std::string ncores, nodes_list, cores_list, instance_idx, strategy = "scatter";
    std::string allocator = "auto", omp = "auto", task_manager = "auto", preload = "auto";
    std::string mpi = "auto";
    int node_id = -1;
    bool enable_tcmalloc = false, enable_jemalloc = false, default_allocator = false;
    bool disable_numactl = false, disable_taskset = false, disable_iomp = false;
    bool multi_instance = false;
};

void add_launch_options(HelpSection section, CLI::App& app, LaunchOptions& o, RawOptions& raw) {
    section.adopt(app.get_help_ptr());
    section.adopt(app.set_version_flag("--version", "ipexrun 0.1.0"));
    section
        .adopt(app.set_config("--config", "",
                              "Read options from a TOML or INI file (command line wins)"))
        ->check(config_file_check());
    app.config_formatter(std::make_shared<CheckedConfig>());
    app.allow_config_extras(CLI::config_extras_mode::error);
    section.flag("-m,--module", o.module, "Run the program as a Python module (python -m)");
    section.flag(spellings({"--no-python"}), o.no_python, "Run the program directly");
    section
        .option("--python", o.python,
                "Python interpreter (default: $IPEXRUN_PYTHON, else the one found at build "
                "time)")
        ->check(kNotBlankPath);
    section
        .option(spellings({"--runtime-preload"}), raw.preload,
                "Preload libipex_runtime.so into every instance: auto (Python programs), on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    section.flag("--dry-run,--dry_run", o.dry_run, "Print the plan as JSON and run nothing");
    section
        .option("--topology", o.topology_file,
                "Plan for the machine described by this hwloc XML file (with --dry-run)")
        ->check(kNotBlankPath);
}

void add_instance_options(HelpSection section, LaunchOptions& o, RawOptions& raw) {
    section.option(spellings({"--ninstances", "--ninstance"}), o.plan.ninstances,
                   "Number of instances (0: from the other options)");
    section.option(spellings({"--ncores-per-instance", "--ncore_per_instance"}), raw.ncores,
                   "Cores per instance: 0 even split, -1 greedy, N, or one size per instance "
                   "(5 5 6)");
    section
        .option(spellings({"--nodes-list", "--node-list"}), raw.nodes_list,
                "NUMA nodes to use, e.g. 0,2-3")
        ->check(kNotBlankIds);
    section.option("--node_id,--node-id", raw.node_id, "(old) use only this NUMA node");
    section
        .option(spellings({"--cores-list", "--core_list", "--core-list"}), raw.cores_list,
                "CPUs to use, e.g. '0-3, 8'")
        ->check(kNotBlankIds);
    section.flag(spellings({"--use-logical-cores", "--use_logical_core", "--use-logical-core"}),
                 o.plan.use_logical_cores, "Also use SMT siblings");
    section.flag(spellings({"--use-e-cores"}), o.plan.use_e_cores,
                 "Also use efficiency cores of hybrid CPUs");
    section.flag(spellings({"--bind-numa-node", "--skip-cross-node-cores"}), o.plan.bind_numa_node,
                 "Keep every instance inside one NUMA node");
    section
        .option(spellings({"--strategy"}), raw.strategy,
                "Where fixed-size instances go when fewer than fit: scatter or close")
        ->check(CLI::IsMember({"scatter", "close"}));
    section.flag(spellings({"--latency-mode"}), o.plan.latency_mode,
                 "4 cores an instance, as many instances as fit");
    section.flag(spellings({"--throughput-mode"}), o.plan.throughput_mode,
                 "One instance per NUMA node");
    section.option(spellings({"--instance-idx", "--rank"}), raw.instance_idx,
                   "Run only these instances, e.g. 0,2-3 (-1: all)");
    section.flag(spellings({"--multi-instance"}), raw.multi_instance,
                 "(old) throughput mode unless sizes are given");
    section
        .option(spellings({"--multi-task-manager"}), raw.task_manager,
                "How CPUs and memory are bound: auto (directly), numactl, taskset, none")
        ->check(CLI::IsMember({"auto", "none", "numactl", "taskset"}));
    section.flag("--disable_numactl,--disable-numactl", raw.disable_numactl, "(old) use taskset");
    section.flag("--disable_taskset,--disable-taskset", raw.disable_taskset, "(old) use numactl");
}

void add_allocator_options(HelpSection section, RawOptions& raw) {
    section
        .option(spellings({"--memory-allocator"}), raw.allocator,
                "auto, default, tcmalloc or jemalloc")
        ->check(CLI::IsMember({"auto", "default", "tcmalloc", "jemalloc"}));
    section.flag("--enable_tcmalloc,--enable-tcmalloc", raw.enable_tcmalloc, "(old) tcmalloc");
    section.flag("--enable_jemalloc,--enable-jemalloc", raw.enable_jemalloc, "(old) jemalloc");
    section.flag("--use_default_allocator,--use-default-allocator", raw.default_allocator,
                 "(old) the default allocator");
}

void add_openmp_options(HelpSection section, RawOptions& raw) {
    section.option(spellings({"--omp-runtime"}), raw.omp, "auto, default (GNU) or intel")
        ->check(CLI::IsMember({"auto", "default", "intel"}));
    section.flag("--disable_iomp,--disable-iomp", raw.disable_iomp, "(old) GNU OpenMP");
}

// Ranks across nodes through an MPI launcher or srun.
void add_distributed_options(HelpSection section, CLI::App& app, DistributedOptions& d,
                             RawOptions& raw) {
    section.option(spellings({"--nnodes"}), d.nnodes,
                   "Number of nodes; 1 or more runs ranks through an MPI launcher or srun");
    section.option(spellings({"--nprocs-per-node", "--nproc_per_node"}), d.nprocs_per_node,
                   "Ranks per node (0: one per NUMA node, or per --nodes-list entry)");
    section
        .option(spellings({"--hostfile"}), d.hostfile,
                "File with one host a line; the first is the master (default: this machine)")
        ->check(kNotBlankPath);
    section
        .option(spellings({"--mpi"}), raw.mpi,
                "auto (srun inside a Slurm allocation, else hydra, else Open MPI), hydra, "
                "openmpi or slurm")
        ->check(CLI::IsMember({"auto", "hydra", "openmpi", "slurm"}));
    section
        .option(spellings({"--master-addr"}), d.master_addr,
                "Address of rank 0 for torch.distributed (default: $MASTER_ADDR, the "
                "hostfile's first host, or 127.0.0.1)")
        ->check(not_blank("a host name or address"));
    section
        .option(spellings({"--master-port"}), d.master_port,
                "Port of rank 0 for torch.distributed (default: $MASTER_PORT or 29500)")
        ->check(CLI::Range(1, 65535));
    section
        .option(spellings({"--ccl-worker-count"}), d.ccl_worker_count,
                "Cores of each rank's share reserved for oneCCL workers (default 0)")
        ->check(CLI::NonNegativeNumber);
    section.flag(spellings({"--logical-cores-for-ccl", "--logical_core_for_ccl"}),
                 d.logical_cores_for_ccl,
                 "oneCCL workers on SMT siblings; OpenMP keeps every core");
    section.option(spellings({"--extra-mpi-params", "--more_mpi_params"}), d.extra_mpi_params,
                   "More arguments for the MPI launcher or srun, split like a shell would: "
                   "--extra-mpi-params='-genv X 1'");
    section
        .option(spellings({"--mpi-agent"}), d.mpi_agent,
                "Remote shell the MPI launcher uses to reach other hosts, and that ipexrun "
                "probes them with (default: ssh)")
        ->check(not_blank("a command such as ssh"));
    // Internal: how each rank runs ipexrun under the MPI launcher; not in --help.
    app.add_flag("--rank-wrapper", d.rank_wrapper)->group("");
}

// Combinations that cannot mean anything; checked before anything is planned.
void check_distributed(const LaunchOptions& o, bool mpi_given) {
    const DistributedOptions& d = o.dist;
    if (d.nnodes < 0) throw UsageError("--nnodes must be 0 or more");
    if (d.nprocs_per_node < 0) throw UsageError("--nprocs-per-node must be 0 or more");
    if (d.logical_cores_for_ccl && o.plan.use_logical_cores)
        throw UsageError("--logical-cores-for-ccl cannot go with --use-logical-cores");
    if (d.nnodes == 0 && !d.rank_wrapper) {
        const std::pair<bool, const char*> needs_nnodes[] = {
            {d.nprocs_per_node > 0, "--nprocs-per-node"},
            {!d.hostfile.empty(), "--hostfile"},
            {mpi_given, "--mpi"},
            {!d.master_addr.empty(), "--master-addr"},
            {d.master_port > 0, "--master-port"},
            {d.ccl_worker_count > 0, "--ccl-worker-count"},
            {d.logical_cores_for_ccl, "--logical-cores-for-ccl"},
            {!d.extra_mpi_params.empty(), "--extra-mpi-params"},
            {!d.mpi_agent.empty(), "--mpi-agent"}};
        for (const auto& [given, name] : needs_nnodes)
            if (given) throw UsageError(std::string(name) + " only applies with --nnodes");
        return;
    }
    const std::pair<bool, const char*> single_node_only[] = {
        {o.plan.ninstances > 0, "--ninstances (use --nprocs-per-node)"},
        {runs_a_subset(o), "--instance-idx"},
        {o.plan.latency_mode, "--latency-mode"},
        {o.plan.throughput_mode, "--throughput-mode (--nprocs-per-node 0 is one rank per node)"},
        {o.benchmark.sweep, "--sweep (it tries layouts of this machine)"}};
    for (const auto& [given, name] : single_node_only)
        if (given) throw UsageError(std::string(name) + " cannot go with --nnodes");
    if (d.logical_cores_for_ccl && d.ccl_worker_count == 0)
        throw UsageError("--logical-cores-for-ccl needs --ccl-worker-count");
}

void add_codeless_options(HelpSection section, LaunchOptions& o) {
    section.flag(spellings({"--auto-ipex"}), o.auto_ipex,
                 "Optimise the program's modules with ipex.optimize without code changes");
    section.option(spellings({"--dtype"}), o.dtype, "With --auto-ipex: float32 or bfloat16")
        ->check(CLI::IsMember({"float32", "bfloat16"}));
    section.flag(spellings({"--auto-ipex-verbose"}), o.auto_ipex_verbose,
                 "With --auto-ipex: report what was optimised");
    auto* graph = section.flag(spellings({"--ipex-graph-mode"}), o.ipex_graph_mode,
                               "With --auto-ipex: models answer from traced, frozen graphs where "
                               "each input's trace is checked (more memory)");
    section
        .flag(spellings({"--disable-ipex-graph-mode"}), o.disable_ipex_graph_mode,
              "With --auto-ipex: eager optimised copies, no TorchScript graph (the default)")
        ->excludes(graph);
}

void add_logging_options(HelpSection section, LaunchOptions& o) {
    section
        .option(spellings({"--log-dir", "--log_path", "--log-path"}), o.log_dir,
                "Write one log file per instance (and one for ipexrun) here")
        ->check(kNotBlankPath);
    section
        .option(spellings({"--log-file-prefix"}), o.log_prefix,
                "Log file name prefix (a name: the files stay in --log-dir)")
        ->check(file_name_prefix());
    section.flag(spellings({"--keep-going"}), o.keep_going,
                 "A failing instance does not stop the others");
    section
        .option(spellings({"--grace-period"}), o.grace_seconds,
                "Seconds between SIGTERM and SIGKILL when stopping instances (0 to " +
                    std::to_string(kMaxGraceSeconds) + ", default 5)")
        ->check(number_within(0, kMaxGraceSeconds, true, "seconds"));
}

void add_benchmark_options(HelpSection section, LaunchOptions& o) {
    section.flag(spellings({"--benchmark"}), o.env.benchmark,
                 "allocator settings for steady-state benchmarking: freed memory is kept, not "
                 "returned (jemalloc decay off; tcmalloc release rate 0, 256 MiB thread caches)");
}

// Turns option text into typed options; throws UsageError for text that cannot be used.
void resolve(const RawOptions& raw, LaunchOptions& o) {
    o.plan.ncores_per_instance = parse_sizes(raw.ncores);
    o.nodes_list = raw.nodes_list;
    if (raw.node_id < -1)
        throw UsageError("--node_id takes a NUMA node id, not " + std::to_string(raw.node_id));
    if (raw.node_id >= 0) {
        if (!o.nodes_list.empty())
            throw UsageError("--node_id and --nodes-list cannot be used together");
        o.nodes_list = std::to_string(raw.node_id);
    }
    o.cores_list = raw.cores_list;
    o.instance_idx = raw.instance_idx;
    o.plan.strategy =
        raw.strategy == "close" ? affinity::Strategy::kClose : affinity::Strategy::kScatter;
    if (raw.multi_instance && o.plan.ninstances == 0 && o.plan.ncores_per_instance.empty() &&
        !o.plan.latency_mode)
        o.plan.throughput_mode = true;

    using allocator::MemoryAllocator;
    o.env.allocator = choices<MemoryAllocator>({{"auto", MemoryAllocator::kAuto},
                                                {"default", MemoryAllocator::kDefault},
                                                {"tcmalloc", MemoryAllocator::kTcmalloc},
                                                {"jemalloc", MemoryAllocator::kJemalloc}})
                          .at(raw.allocator);
    const int old_allocators = raw.enable_tcmalloc + raw.enable_jemalloc + raw.default_allocator;
    if (old_allocators > 1)
        o.notes.push_back(
            "more than one of --enable_tcmalloc, --enable_jemalloc and "
            "--use_default_allocator: using auto");
    else if (raw.enable_tcmalloc)
        o.env.allocator = MemoryAllocator::kTcmalloc;
    else if (raw.enable_jemalloc)
        o.env.allocator = MemoryAllocator::kJemalloc;
    else if (raw.default_allocator)
        o.env.allocator = MemoryAllocator::kDefault;

    using allocator::OmpRuntime;
    o.env.omp = choices<OmpRuntime>({{"auto", OmpRuntime::kAuto},
                                     {"default", OmpRuntime::kDefault},
                                     {"intel", OmpRuntime::kIntel}})
                    .at(raw.omp);
    if (raw.disable_iomp) o.env.omp = OmpRuntime::kDefault;
    o.dist.mpi = choices<MpiChoice>({{"auto", MpiChoice::kAuto},
                                     {"hydra", MpiChoice::kHydra},
                                     {"openmpi", MpiChoice::kOpenMpi},
                                     {"slurm", MpiChoice::kSlurm}})
                     .at(raw.mpi);

    o.task_manager = choices<TaskManager>({{"auto", TaskManager::kAuto},
                                           {"none", TaskManager::kNone},
                                           {"numactl", TaskManager::kNumactl},
                                           {"taskset", TaskManager::kTaskset}})
                         .at(raw.task_manager);
    if (raw.disable_numactl && raw.disable_taskset)
        o.task_manager = TaskManager::kNone;
    else if (raw.disable_numactl)
        o.task_manager = TaskManager::kTaskset;
    else if (raw.disable_taskset)
        o.task_manager = TaskManager::kNumactl;
    o.runtime_preload = choices<RuntimePreload>({{"auto", RuntimePreload::kAuto},
                                                 {"on", RuntimePreload::kOn},
                                                 {"off", RuntimePreload::kOff}})
                            .at(raw.preload);
    if (o.module && o.no_python) throw UsageError("-m and --no-python cannot be used together");
    if (o.auto_ipex && o.no_python)
        throw UsageError("--auto-ipex optimises Python programs; it cannot go with --no-python");
    const std::pair<bool, const char*> codeless_only[] = {
        {o.ipex_graph_mode, "--ipex-graph-mode"},
        {o.disable_ipex_graph_mode, "--disable-ipex-graph-mode"},
        {o.auto_ipex_verbose, "--auto-ipex-verbose"}};
    for (const auto& [given, name] : codeless_only)
        if (given && !o.auto_ipex)
            o.notes.push_back(std::string(name) + " has no effect without --auto-ipex");
}

}  // namespace

bool runs_a_subset(const LaunchOptions& o) {
    std::string idx = o.instance_idx;
    idx.erase(std::remove(idx.begin(), idx.end(), ' '), idx.end());
    return !idx.empty() && idx != "-1";
}

ParseResult parse_options(int argc, const char* const* argv) {
    LaunchOptions o;
    RawOptions raw;
    CLI::App app{
        "Launch one or more instances of a program (usually a PyTorch script), each bound to "
        "its own CPUs and NUMA memory, with a tuned allocator and OpenMP runtime.",
        "ipexrun"};
    app.prefix_command();  // the first non-option is the program; the rest are its arguments
    app.footer(
        "The program and its arguments follow the options: ipexrun [OPTIONS] program [ARGS...]");
    add_launch_options({app, "Launch and program"}, app, o, raw);
    add_instance_options({app, "Instances and cores"}, o, raw);
    add_allocator_options({app, "Memory allocator"}, raw);
    add_openmp_options({app, "OpenMP"}, raw);
    add_distributed_options({app, "Distributed (ranks across nodes through MPI or Slurm)"}, app,
                            o.dist, raw);
    add_codeless_options({app, "Codeless optimisation (auto_ipex)"}, o);
    add_logging_options({app, "Logging and supervision"}, o);
    add_benchmark_options({app, "Benchmarking"}, o);
    add_benchmark_report_options(app, o.benchmark);  // same "Benchmarking" section

    std::vector<std::string> args = join_size_lists(argc, argv);
    try {
        drop_backend_selector(args);
        std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 wants it so
        app.parse(reversed);
        std::vector<std::string> rest = app.remaining();
        o.option_args.assign(args.begin() + 1, args.end() - static_cast<long>(rest.size()));
        if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
        if (rest.empty()) throw UsageError("no program given (see ipexrun --help)");
        if (!rest.front().empty() && rest.front()[0] == '-')
            throw UsageError("unknown option " + affinity::quote_text(rest.front()) +
                             " (see ipexrun --help)");
        o.program = rest.front();
        o.program_args.assign(rest.begin() + 1, rest.end());

        resolve(raw, o);
        check_distributed(o, app.count("--mpi") > 0);
    } catch (const CLI::CallForHelp&) {
        std::cout << app.help();
        return {std::nullopt, 0};
    } catch (const CLI::CallForVersion& e) {
        std::cout << e.what() << "\n";
        return {std::nullopt, 0};
    } catch (const CLI::ConfigError& e) {
        const auto files = app.get_config_ptr()->results();
        std::cerr << "ipexrun: error: "
                  << affinity::one_line(config_error_text(e, files.empty() ? "" : files.front()))
                  << "\n";
        return {std::nullopt, 2};
    } catch (const CLI::ParseError& e) {
        std::cerr << "ipexrun: error: " << affinity::one_line(e.what()) << "\n";
        return {std::nullopt, 2};
    } catch (const UsageError& e) {
        std::cerr << "ipexrun: error: " << affinity::one_line(e.what()) << "\n";
        return {std::nullopt, 2};
    }
    return {std::move(o), 0};
}

}  // namespace ipex::launcher
