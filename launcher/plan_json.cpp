#include "plan_json.h"

#include <nlohmann/json.hpp>

namespace ipex::launcher {
namespace {

const char* bind_name(BindMethod m) {
    switch (m) {
        case BindMethod::kDirect:
            return "direct";
        case BindMethod::kNumactl:
            return "numactl";
        case BindMethod::kTaskset:
            return "taskset";
        case BindMethod::kNone:
            return "none";
    }
    return "direct";
}

}  // namespace

std::string plan_to_json(const LaunchPlan& plan) {
    nlohmann::ordered_json doc;
    doc["instances"] = nlohmann::ordered_json::array();
    for (const auto& inst : plan.instances) {
        nlohmann::ordered_json j;
        j["index"] = inst.index;
        j["cpus"] = inst.cpus;
        j["nodes"] = inst.memory_nodes;
        j["omp_num_threads"] = inst.omp_num_threads;
        j["env"] = inst.env;
        j["argv"] = inst.argv;
        doc["instances"].push_back(std::move(j));
    }
    doc["bind"] = bind_name(plan.bind);
    doc["python"] = plan.python.empty() ? nlohmann::ordered_json(nullptr)
                                        : nlohmann::ordered_json{{"path", plan.python},
                                                                 {"source", plan.python_source}};
    doc["allocator"] = plan.allocator;
    doc["omp_runtime"] = plan.omp_runtime;
    doc["warnings"] = plan.warnings;
    return doc.dump(2);
}

}  // namespace ipex::launcher
