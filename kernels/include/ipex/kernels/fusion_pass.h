// TorchScript fusion for frozen graphs: aten conv/linear with constant weights, plus the
// eltwise / add that follows them, become ipex::conv_run / ipex::linear_run on prepacked
// contexts. Graphs without such a pattern are left untouched.
#pragma once

#include <memory>

namespace torch::jit {
struct Graph;
}

namespace ipex::kernels {

// Returns the number of aten nodes replaced.
int fuse_frozen_graph(const std::shared_ptr<torch::jit::Graph>& graph);

// Whether the globally registered pre-pass applies fuse_frozen_graph (default: off; turned
// on by ipex.optimize(graph_mode=True) or the ipex::set_jit_fusion op). IPEX_JIT_VERBOSE=1
// prints how many nodes each run of the pass replaced.
void set_jit_fusion_enabled(bool enabled);
bool jit_fusion_enabled();

}  // namespace ipex::kernels
