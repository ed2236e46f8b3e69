// The parts of the runtime that touch torch: thread-state propagation into tasks,
// MultiStreamModule over TorchScript modules, and oneDNN results across thread counts.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <thread>

#include "ipex/runtime/multi_stream.h"
#include "ipex/runtime/stream_split.h"
#include "ipex/runtime/task.h"
#include "ipex/runtime/thread_count_watch.h"

namespace ipex::runtime {
namespace {

MultiStreamModule::Options streams(int n) {
    MultiStreamModule::Options o;
    o.num_streams = n;
    return o;
}

std::shared_ptr<TaskExecutor> executor() {
    return std::make_shared<TaskExecutor>(CPUPool({allowed_cpus()[0]}));
}

TEST(TaskThreadState, GradInferenceAndAutocastTravelWithTheCall) {
    auto ex = executor();
    Task probe(
        [] {
            return std::make_tuple(at::GradMode::is_enabled(), c10::InferenceMode::is_enabled(),
                                   at::autocast::is_cpu_enabled(),
                                   at::autocast::get_autocast_cpu_dtype());
        },
        ex);
    {
        at::NoGradGuard no_grad;
        auto [grad, inference, autocast, dtype] = probe().get();
        EXPECT_FALSE(grad);
        EXPECT_FALSE(inference);
        EXPECT_FALSE(autocast);
        (void)dtype;
    }
    {
        c10::InferenceMode guard;
        auto [grad, inference, autocast, dtype] = probe().get();
        EXPECT_FALSE(grad);
        EXPECT_TRUE(inference);
        (void)autocast;
        (void)dtype;
    }
    {
        // (This torch accepts only bfloat16 as the CPU autocast dtype, so only that is checked.)
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        auto [grad, inference, autocast, dtype] = probe().get();
        at::autocast::set_cpu_enabled(false);
        EXPECT_TRUE(grad);
        EXPECT_FALSE(inference);
        EXPECT_TRUE(autocast);
        EXPECT_EQ(dtype, at::kBFloat16);
    }
    // Nothing leaks into the next call: the worker's own state comes back after each task.
    auto [grad, inference, autocast, dtype] = probe().get();
    EXPECT_TRUE(grad);
    EXPECT_FALSE(inference);
    EXPECT_FALSE(autocast);
    (void)dtype;
}

TEST(StreamSplit, Sizes) {
    EXPECT_EQ(split_sizes(4, 3), (std::vector<int64_t>{2, 1, 1}));
    EXPECT_EQ(split_sizes(5, 2), (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(split_sizes(1, 2), (std::vector<int64_t>{1}));
    EXPECT_EQ(split_sizes(0, 2), (std::vector<int64_t>{0}));
    EXPECT_THROW(split_sizes(3, 0), std::invalid_argument);
}

torch::jit::Module conv_softmax_module() {
    torch::manual_seed(0);
    torch::jit::Module m("ConvSoftmax");
    m.register_parameter("weight", torch::randn({8, 3, 3, 3}), false);
    m.register_parameter("bias", torch::randn({8}), false);
    m.define(R"JIT(
    def forward(self, x):
        y = torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 1)
        return torch.softmax(y, 1)
  )JIT");
    m.eval();
    return m;
}

at::Tensor eager_conv_softmax(const torch::jit::Module& m, const at::Tensor& x) {
    return at::softmax(at::conv2d(x, m.attr("weight").toTensor(), m.attr("bias").toTensor(), 1, 1),
                       1);
}

TEST(MultiStreamModule, ConvSoftmaxEqualsEagerForEveryPoolAndBatch) {
    auto m = conv_softmax_module();
    std::vector<CPUPool> pools{CPUPool({allowed_cpus()[0]}), CPUPool::all()};
    if (allowed_cpus().size() > 1) pools.push_back(CPUPool({allowed_cpus()[1]}));
    for (const auto& pool : pools) {
        for (int s = 1; s <= static_cast<int>(pool.size()); ++s) {
            MultiStreamModule msm(m, pool, streams(s));
            ASSERT_EQ(msm.num_streams(), s);
            for (int64_t batch : {1, 2, 3, 5}) {
                auto x = torch::randn({batch, 3, 10, 10});
                auto out = msm.forward({x}).toTensor();
                EXPECT_TRUE(torch::allclose(out, eager_conv_softmax(m, x), 1e-5, 1e-6))
                    << "pool " << pool.to_string() << " streams " << s << " batch " << batch;
            }
        }
    }
}

TEST(MultiStreamModule, UnevenAndSmallBatchesUseTheRightStreams) {
    if (allowed_cpus().size() < 2) GTEST_SKIP() << "needs two CPUs";
    auto m = conv_softmax_module();
    MultiStreamModule::Options o;
    o.num_streams = 2;
    o.concat_output = false;
    MultiStreamModule msm(m, CPUPool::all(), o);
    c10::IValue out = msm.forward({torch::randn({3, 3, 6, 6})});  // keeps the list alive
    auto parts = out.toListRef();
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].toTensor().size(0), 2);
    EXPECT_EQ(parts[1].toTensor().size(0), 1);
    EXPECT_EQ(msm.forward({torch::randn({1, 3, 6, 6})}).toListRef().size(), 1u);
    // An empty batch runs once, giving an empty result of the right shape.
    c10::IValue empty_out = msm.forward({torch::randn({0, 3, 6, 6})});
    auto empty = empty_out.toListRef();
    ASSERT_EQ(empty.size(), 1u);
    EXPECT_EQ(empty[0].toTensor().sizes(), (std::vector<int64_t>{0, 8, 6, 6}));
}

TEST(MultiStreamModule, NestedTupleListDictHints) {
    torch::jit::Module m("Nested");
    m.define(R"JIT(
    def forward(self, x: Tensor, pair: Tuple[Tensor, Tensor], d: Dict[str, Tensor], scale: Tensor):
        a = x * scale + pair[0]
        b = pair[1].sum(0, keepdim=True)
        return (a, {"y": d["y"] * 2.0, "t": d["t"] + 1.0}, b)
  )JIT");
    auto x = torch::randn({5, 4});
    auto p0 = torch::randn({5, 4});
    auto p1 = torch::randn({3, 5});  // split along dim 1
    c10::Dict<std::string, at::Tensor> d;
    d.insert("y", torch::randn({5}));
    d.insert("t", torch::randn({2, 5}));  // split along dim 1
    auto scale = torch::randn({4});       // the same for every stream

    c10::impl::GenericDict dh(c10::StringType::get(), c10::IntType::get());
    dh.insert("y", int64_t{0});
    dh.insert("t", int64_t{1});
    MultiStreamModule::Options o;
    o.num_streams = static_cast<int>(std::min<std::size_t>(2, allowed_cpus().size()));
    o.input_split_hint = c10::ivalue::Tuple::create(
        {int64_t{0}, c10::ivalue::Tuple::create({int64_t{0}, int64_t{1}}), dh, c10::IValue()});
    c10::impl::GenericDict oh(c10::StringType::get(), c10::IntType::get());
    oh.insert("y", int64_t{0});
    oh.insert("t", int64_t{1});
    // b is a per-stream partial sum: concatenated along dim 1 it is the whole sum.
    o.output_concat_hint = c10::ivalue::Tuple::create({int64_t{0}, oh, int64_t{1}});
    MultiStreamModule msm(m, CPUPool::all(), o);
    auto out =
        msm.forward({x, c10::ivalue::Tuple::create({p0, p1}), d, scale}).toTupleRef().elements();
    EXPECT_TRUE(torch::allclose(out[0].toTensor(), x * scale + p0));
    auto od = out[1].toGenericDict();
    EXPECT_TRUE(torch::allclose(od.at("y").toTensor(), d.at("y") * 2.0));
    EXPECT_TRUE(torch::allclose(od.at("t").toTensor(), d.at("t") + 1.0));
    EXPECT_TRUE(torch::allclose(out[2].toTensor(), p1.sum(0, true)));
}

TEST(MultiStreamModule, EmbeddingBagWithRebasedOffsets) {
    torch::manual_seed(1);
    torch::jit::Module m("Bags");
    m.register_parameter("weight", torch::randn({20, 6}), false);
    m.define(R"JIT(
    def forward(self, indices, offsets):
        return torch.embedding_bag(self.weight, indices, offsets, False, 0, False, None, False)[0]
  )JIT");
    // Bags of lengths 3, 0, 2, 4, 1.
    auto indices = torch::tensor({1, 5, 7, 2, 2, 9, 0, 3, 19, 4}, torch::kLong);
    auto offsets = torch::tensor({0, 3, 3, 5, 9}, torch::kLong);
    auto reference = m.forward({indices, offsets}).toTensor();

    auto parts = split_embedding_bag({indices, offsets}, 2);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_TRUE(torch::equal(parts[0][1].toTensor(), torch::tensor({0, 3, 3}, torch::kLong)));
    EXPECT_TRUE(torch::equal(parts[1][1].toTensor(), torch::tensor({0, 4}, torch::kLong)));
    EXPECT_TRUE(
        torch::equal(parts[1][0].toTensor(), torch::tensor({9, 0, 3, 19, 4}, torch::kLong)));

    MultiStreamModule::Options o;
    o.num_streams = static_cast<int>(std::min<std::size_t>(2, allowed_cpus().size()));
    o.split = split_embedding_bag;
    MultiStreamModule msm(m, CPUPool::all(), o);
    EXPECT_TRUE(torch::allclose(msm.forward({indices, offsets}).toTensor(), reference));
}

TEST(MultiStreamModule, ForwardFromSeveralThreads) {
    auto m = conv_softmax_module();
    MultiStreamModule msm(m, CPUPool::all());
    std::vector<std::thread> callers;
    std::atomic<int> good{0};
    for (int t = 0; t < 4; ++t)
        callers.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                auto x = torch::randn({1 + (t + i) % 4, 3, 8, 8});
                if (torch::allclose(msm.forward({x}).toTensor(), eager_conv_softmax(m, x), 1e-5,
                                    1e-6))
                    ++good;
            }
        });
    for (auto& c : callers) c.join();
    EXPECT_EQ(good.load(), 40);
}

TEST(MultiStreamModule, ClearErrors) {
    auto m = conv_softmax_module();
    EXPECT_THROW(
        MultiStreamModule(m, CPUPool::all(), streams(static_cast<int>(allowed_cpus().size()) + 1)),
        std::invalid_argument);
    EXPECT_THROW(MultiStreamModule(m, CPUPool::all(), streams(-1)), std::invalid_argument);
    MultiStreamModule::Options o;
    o.input_split_hint = c10::ivalue::Tuple::create({int64_t{0}, int64_t{0}});
    torch::jit::Module two("Two");
    two.define("def forward(self, a, b):\n    return a + b\n");
    MultiStreamModule msm(two, CPUPool::all(), o);
    try {
        msm.forward({torch::ones({4}), torch::ones({3})});
        FAIL() << "batch sizes disagree";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("disagree"), std::string::npos) << e.what();
    }
}

// oneDNN (torch's mkldnn convolution) under thread counts 2 -> 1 -> 2: each result against a
// double-precision reference, and the thread-count watch notices every change.
TEST(OneDnnThreadCount, MkldnnConvStaysCorrectWhenTheTeamSizeChanges) {
    torch::manual_seed(2);
    auto x = torch::randn({4, 16, 14, 14});
    auto w = torch::randn({32, 16, 3, 3});
    auto b = torch::randn({32});
    auto reference = at::conv2d(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble), 1, 1);
    auto xm = x.to_mkldnn();
    const int threads_before = at::get_num_threads();
    (void)current_omp_threads();
    for (int n : {2, 1, 2}) {
        auto g = omp_thread_generation();
        at::set_num_threads(n);
        EXPECT_EQ(current_omp_threads(), n);
        if (n != threads_before) {
            EXPECT_GT(omp_thread_generation(), g);
        }
        auto dense = at::mkldnn_convolution(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1);
        auto blocked =
            at::mkldnn_convolution(xm, w.to_mkldnn(), b.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1)
                .to_dense();
        EXPECT_TRUE(torch::allclose(dense.to(at::kDouble), reference, 1e-3, 1e-3))
            << n << " threads";
        EXPECT_TRUE(torch::allclose(blocked.to(at::kDouble), reference, 1e-3, 1e-3))
            << n << " threads";
    }
    at::set_num_threads(threads_before);
}

}  // namespace
}  // namespace ipex::runtime
