// Registration and shape function of StyleGAN2>BiasAct.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace stylegan2 {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("StyleGAN2>BiasAct")
    .Input("x: T")
    .Input("b: T")
    .Input("xref: T")
    .Input("yref: T")
    .Input("dy: T")
    .Output("y: T")
    .Attr("T: {float, half}")
    .Attr("act: int = 1")
    .Attr("grad: int = 0")
    .Attr("axis: int = -1")
    .Attr("alpha: float = 0.0")
    .Attr("gain: float = 1.0")
    .Attr("clamp: float = -1.0")
    .SetShapeFn([](InferenceContext* c) -> Status {
      c->set_output(0, c->input(0));
      return Status();
    })
    .Doc(R"doc(
Fused bias + activation + gain + clamp, or its first (grad=1) or second
(grad=2) derivative. Optional inputs are passed as empty tensors.

x: input (grad 0) or incoming gradient (grad 1, 2); any rank.
b: [x.shape[axis]] bias, or empty.
xref: the grad-0 input, or empty when the activation does not need it.
yref: the grad-0 output, or empty when the activation does not need it.
dy: grad 2 only: the incoming gradient of the grad-1 op; else empty.
y: same shape as x.
)doc");

}  // namespace stylegan2
