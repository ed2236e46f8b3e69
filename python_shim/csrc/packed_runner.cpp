// torch.ops.ipex.conv_run(x, ctx, ...) from Python looks up __torch_function__ on the context,
// a torch.ScriptObject, which throws and catches a C++ exception on every call: ~10 us, more
// than a small layer takes. A runner holds the context itself and is called directly.
#include "packed_runner.h"

#include <pybind11/stl.h>
#include <torch/csrc/Dtype.h>
#include <torch/csrc/jit/python/pybind_utils.h>
#include <torch/csrc/utils/pybind.h>

#include <string>
#include <vector>

#include "ipex/kernels/conv_context.h"
#include "ipex/kernels/linear_context.h"
#include "ipex/kernels/post_ops.h"

namespace py = pybind11;

namespace ipex::python {

namespace {

template <class Context>
c10::intrusive_ptr<Context> unwrap(const py::object& script_object) {
    const auto type = c10::getCustomClassType<c10::intrusive_ptr<Context>>();
    return torch::jit::toIValue(script_object, type).template toCustomClass<Context>();
}

c10::optional<c10::ScalarType> to_scalar_type(const py::object& dtype) {
    if (dtype.is_none()) return c10::nullopt;
    if (!THPDtype_Check(dtype.ptr())) throw py::type_error("out_dtype must be a torch.dtype");
    return reinterpret_cast<THPDtype*>(dtype.ptr())->scalar_type;
}

template <class Context>
class Runner {
  public:
    explicit Runner(const py::object& script_object) : ctx_(unwrap<Context>(script_object)) {}

    at::Tensor run(const at::Tensor& x, const std::string& post_op, const std::vector<double>& args,
                   const c10::optional<at::Tensor>& other, const py::object& out_dtype) const {
        const auto dtype = to_scalar_type(out_dtype);
        py::gil_scoped_release nogil;
        const kernels::PostOps& ops = kernels::PostOps::cached(post_op, args);
        if constexpr (std::is_same_v<Context, kernels::LinearContext>)
            return ctx_->run(x, ops, other, /*in_place=*/false, dtype);
        else
            return ctx_->run(x, ops, other, /*in_place=*/false);
    }

  private:
    c10::intrusive_ptr<Context> ctx_;
};

template <class Context>
void bind_runner(py::module& m, const char* name) {
    py::class_<Runner<Context>>(m, name)
        .def(py::init<const py::object&>(), py::arg("context"))
        .def("run", &Runner<Context>::run, py::arg("x"), py::arg("post_op") = "none",
             py::arg("args") = std::vector<double>{}, py::arg("other") = py::none(),
             py::arg("out_dtype") = py::none());
}

}  // namespace

void bind_packed_runners(py::module& m) {
    bind_runner<kernels::ConvContext>(m, "ConvRunner");
    bind_runner<kernels::LinearContext>(m, "LinearRunner");
}

}  // namespace ipex::python
