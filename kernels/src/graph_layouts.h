// Stock's memory layout for the fused convolutions of a frozen TorchScript graph.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

namespace ipex::kernels::detail {

// ipex::conv_run writes the kernels' channels-last layout; where its result can reach code
// that sees the layout (a view, a returned value, an unknown op), a contiguous copy is
// inserted, as stock's convolution of a contiguous input is contiguous. Results that only
// flow through layout-neutral ops into layout-blind ones (another fused convolution, flatten,
// reshape, a reduction, a size) keep the fast layout. Returns the number of copies inserted.
int restore_stock_layouts(torch::jit::Block* block, torch::jit::Graph& graph);

}  // namespace ipex::kernels::detail
