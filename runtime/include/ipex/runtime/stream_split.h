// How MultiStreamModule cuts inputs into per-stream micro-batches and joins the outputs.
//
// A hint mirrors the structure of the value it describes: an int leaf is the dim to split
// (or concatenate) along, None means "the same for every stream" (inputs) or "stream 0's"
// (outputs); tuples, lists and dicts (string keys) nest. An int leaf over a container
// applies to every tensor inside it.
#pragma once

#include <ATen/core/ivalue.h>

#include <functional>
#include <vector>

namespace ipex::runtime {

// Micro-batch sizes of `batch` items over `streams` streams: [2,1,1] for 4 over 3; a batch
// smaller than the stream count gives one item to each of `batch` streams; an empty batch
// gives [0] (one stream runs it).
std::vector<int64_t> split_sizes(int64_t batch, int streams);

// Per-stream argument lists. Tensors under an int hint are sliced (views); the batch size
// comes from the first of them and every other one must agree. With no int-hinted tensor
// at all the inputs go to a single stream unchanged. Throws std::invalid_argument on
// mismatched structure or sizes.
using StreamInputs = std::vector<std::vector<c10::IValue>>;
StreamInputs split_by_hint(const std::vector<c10::IValue>& inputs, const c10::IValue& hint,
                           int streams);

// Joins per-stream outputs (in stream order) following the hint.
c10::IValue concat_by_hint(const std::vector<c10::IValue>& outputs, const c10::IValue& hint);

// User-supplied replacements for the two above.
using SplitFn = std::function<StreamInputs(const std::vector<c10::IValue>& inputs, int streams)>;
using ConcatFn = std::function<c10::IValue(const std::vector<c10::IValue>& outputs)>;

// Split for EmbeddingBag-style inputs (indices, offsets, extra...): `indices` is flat 1-D,
// `offsets` (1-D, one entry per bag, first 0) marks where each bag starts. Each stream gets
// whole bags: its slice of indices and its offsets rebased to start at 0. Extra arguments go
// to every stream unchanged. Concatenate the outputs along dim 0.
StreamInputs split_embedding_bag(const std::vector<c10::IValue>& inputs, int streams);

}  // namespace ipex::runtime
