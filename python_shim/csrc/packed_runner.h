// Eager calls of the prepacked conv/linear layers from Python.
#pragma once

#include <pybind11/pybind11.h>

namespace ipex::python {

// Adds ConvRunner and LinearRunner to the module.
void bind_packed_runners(pybind11::module& m);

}  // namespace ipex::python
