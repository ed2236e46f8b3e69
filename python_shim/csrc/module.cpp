// ipex._C: Python bindings of libipex_runtime.so. Importing it loads the library, and with it
// the kernels' TORCH_LIBRARY(ipex) operators.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/jit/python/module_python.h>
#include <torch/csrc/jit/python/pybind_utils.h>
#include <torch/csrc/utils/pybind.h>

#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "ipex/runtime/cpu_pool.h"
#include "ipex/runtime/pin.h"
#include "ipex/runtime/stream_split.h"
#include "ipex/runtime/task.h"
#include "ipex/runtime/thread_count_watch.h"
#include "packed_runner.h"

namespace py = pybind11;
namespace rt = ipex::runtime;

namespace {

// Python objects must only be touched with the GIL held, also when the last reference goes
// away on a worker thread.
struct GilReleaser {
    void operator()(py::object* o) const {
        // A task thread that takes the GIL while the interpreter shuts down is ended by
        // Python (pthread_exit) inside this destructor, which must not unwind: leak instead.
        if (Py_IsInitialized() && !_Py_IsFinalizing()) {
            py::gil_scoped_acquire gil;
            delete o;
        } else {
            o->release();  // interpreter gone or going: leak rather than crash
            delete o;
        }
    }
};
using SharedPyObject = std::shared_ptr<py::object>;
SharedPyObject share(py::object o) {
    return SharedPyObject(new py::object(std::move(o)), GilReleaser{});
}

struct PyCall {
    SharedPyObject fn, args, kwargs;
};

// Result of a submitted call: a TorchScript value (converted on get()) or a Python object.
class Future {
  public:
    explicit Future(std::future<c10::IValue> f) : script_(std::move(f)) {}
    explicit Future(std::future<SharedPyObject> f) : python_(std::move(f)) {}

    py::object get() {
        if (fetched_) throw std::runtime_error("Future.get(): the result was already taken");
        fetched_ = true;
        if (script_.valid()) {
            c10::IValue v;
            {
                py::gil_scoped_release nogil;
                v = script_.get();
            }
            return torch::jit::toPyObject(std::move(v));
        }
        SharedPyObject r;
        {
            py::gil_scoped_release nogil;
            r = python_.get();
        }
        return *r;
    }

    bool done() const {
        using namespace std::chrono_literals;
        if (fetched_) return true;
        return script_.valid() ? script_.wait_for(0s) == std::future_status::ready
                               : python_.wait_for(0s) == std::future_status::ready;
    }

  private:
    std::future<c10::IValue> script_;
    std::future<SharedPyObject> python_;
    bool fetched_ = false;
};

// A callable or a TorchScript module bound to its own pinned worker thread.
class PyTask;

// Every live Task, so that the interpreter's exit can finish their work first: a task thread
// that needs the GIL once Python has begun shutting down is ended by Python in mid-call.
struct LiveTasks {
    std::mutex mu;
    std::set<PyTask*> tasks;
};
LiveTasks& live_tasks() {
    static auto* live = new LiveTasks;  // never destroyed: tasks may outlive static destruction
    return *live;
}

class PyTask {
  public:
    PyTask(py::object callable, const rt::CPUPool& pool) {
        {
            std::lock_guard<std::mutex> lock(live_tasks().mu);
            live_tasks().tasks.insert(this);
        }
        if (auto m = torch::jit::as_module(callable))
            module_ = *m;
        else if (!PyCallable_Check(callable.ptr()))
            throw py::type_error("Task: the first argument must be callable");
        callable_ = share(std::move(callable));
        py::gil_scoped_release nogil;  // the worker's start-up must not wait for us
        executor_ = std::make_shared<rt::TaskExecutor>(pool);
    }

    Future submit(py::args args, py::kwargs kwargs) {
        if (module_) {
            // Arguments are converted now (they are Python objects); forward then runs without the
            // GIL.
            auto method = module_->get_method("forward");
            torch::jit::Stack stack = torch::jit::createStackForSchema(
                method.function().getSchema(), torch::jit::tuple_slice(std::move(args)), kwargs,
                module_->_ivalue());
            py::gil_scoped_release nogil;
            rt::Task task(
                [m = *module_](torch::jit::Stack s) mutable {
                    m.get_method("forward").function().run(s);
                    return s.back();
                },
                executor_);
            return Future(task(std::move(stack)));
        }
        PyCall call{callable_, share(std::move(args)), share(std::move(kwargs))};
        rt::Task task(
            [](PyCall c) {
                // Torch operators release the GIL while they compute, so streams overlap there.
                py::gil_scoped_acquire gil;
                py::object out = (*c.fn)(*py::reinterpret_borrow<py::tuple>(*c.args),
                                         **py::reinterpret_borrow<py::dict>(*c.kwargs));
                // Dropped while the GIL is held: releasing them later would take it again on
                // this thread, which Python ends if it is shutting down by then.
                c = PyCall{};
                return share(std::move(out));
            },
            executor_);
        py::gil_scoped_release nogil;
        return Future(task(std::move(call)));
    }

    void shutdown(bool cancel) {
        py::gil_scoped_release nogil;  // queued Python calls need the GIL to finish
        executor_->shutdown(cancel ? rt::TaskExecutor::Shutdown::cancel
                                   : rt::TaskExecutor::Shutdown::drain);
    }

    ~PyTask() {
        {
            std::lock_guard<std::mutex> lock(live_tasks().mu);
            live_tasks().tasks.erase(this);
        }
        if (executor_) {
            py::gil_scoped_release nogil;
            executor_.reset();
        }
    }

    const rt::CPUPool& pool() const { return executor_->pool(); }

  private:
    std::optional<torch::jit::Module> module_;
    SharedPyObject callable_;
    std::shared_ptr<rt::TaskExecutor> executor_;
};

// pin as an object with explicit enter/exit, for the Python context manager.
class PyPin {
  public:
    explicit PyPin(rt::CPUPool pool) : pool_(std::move(pool)) {}
    void enter() {
        if (scope_) throw std::runtime_error("pin: this scope is already entered");
        py::gil_scoped_release nogil;
        scope_.emplace(pool_);
    }
    void exit() {
        if (!scope_) throw std::runtime_error("pin: exit without enter");
        py::gil_scoped_release nogil;
        scope_.reset();
    }

  private:
    rt::CPUPool pool_;
    std::optional<rt::pin> scope_;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "ipex runtime: CPU pools, pinned OpenMP teams, tasks, thread-count watch";
    m.attr("__version__") = IPEX_VERSION;  // the project's, as `ipexrun --version` prints it
    // Bad input raises ValueError with the library's one-line message; torch errors keep their
    // message without the C++ backtrace.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const c10::Error& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
        }
    });

    py::class_<rt::CPUPool>(m, "CPUPool")
        .def(py::init<const std::vector<int>&>(), py::arg("cpus"))
        .def_static("numa_node", &rt::CPUPool::numa_node, py::arg("node"))
        .def_static("all", &rt::CPUPool::all)
        .def_property_readonly("cpus", &rt::CPUPool::cpus)
        .def("__len__", &rt::CPUPool::size)
        .def("split", &rt::CPUPool::split, py::arg("parts"))
        .def("__eq__", [](const rt::CPUPool& a, const rt::CPUPool& b) { return a == b; })
        .def("__repr__", [](const rt::CPUPool& p) { return "CPUPool(" + p.to_string() + ")"; });

    py::class_<PyPin>(m, "Pin")
        .def(py::init<rt::CPUPool>())
        .def("enter", &PyPin::enter)
        .def("exit", &PyPin::exit);
    m.def("current_cpu_pool", &rt::current_cpu_pool);
    m.def("allowed_cpus", &rt::allowed_cpus);
    m.def("team_thread_ids", &rt::team_thread_ids, py::call_guard<py::gil_scoped_release>());
    m.def("is_runtime_ext_enabled", &rt::is_runtime_ext_enabled);
    m.def("openmp_runtime_name", &rt::openmp_runtime_name);

    py::class_<Future>(m, "Future").def("get", &Future::get).def("done", &Future::done);
    py::class_<PyTask>(m, "Task")
        .def(py::init<py::object, const rt::CPUPool&>(), py::arg("callable"), py::arg("cpu_pool"))
        .def("__call__", &PyTask::submit)
        .def("shutdown", &PyTask::shutdown, py::arg("cancel") = false)
        .def_property_readonly("cpu_pool", &PyTask::pool);

    m.def("split_sizes", &rt::split_sizes, py::arg("batch"), py::arg("streams"));

    // At exit (atexit runs before the interpreter starts to shut down) the running call of
    // every task ends normally and queued ones are cancelled; nobody is left to wait for them.
    py::module_::import("atexit").attr("register")(py::cpp_function([] {
        std::vector<PyTask*> tasks;
        {
            std::lock_guard<std::mutex> lock(live_tasks().mu);
            tasks.assign(live_tasks().tasks.begin(), live_tasks().tasks.end());
        }
        for (PyTask* task : tasks) task->shutdown(/*cancel=*/true);
    }));
    m.def(
        "split_embedding_bag",
        [](const at::Tensor& indices, const at::Tensor& offsets, int streams) {
            std::vector<std::pair<at::Tensor, at::Tensor>> out;
            for (auto& part : rt::split_embedding_bag({indices, offsets}, streams))
                out.emplace_back(part[0].toTensor(), part[1].toTensor());
            return out;
        },
        py::arg("indices"), py::arg("offsets"), py::arg("streams"));

    m.def("omp_thread_generation", &rt::omp_thread_generation);
    m.def("current_omp_threads", &rt::current_omp_threads);
    m.def("cache_invalidations", &rt::cache_invalidations);

    ipex::python::bind_packed_runners(m);
}
