// Registration and shape function of StyleGAN2>BiasAct.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace stylegan2 {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("StyleGAN2>BiasAct")
    .Input("x: T")
    .Input("b: T")
    .Input("xref: T")
    .Input("yref: T")
    .Input("dy: T")
    .Output("y: T")
    .Output("db: T")
    .Attr("T: {float, half}")
    .Attr("act: int = 1")
    .Attr("grad: int = 0")
    .Attr("axis: int = -1")
    .Attr("alpha: float = 0.0")
    .Attr("gain: float = 1.0")
    .Attr("clamp: float = -1.0")
    .SetShapeFn([](InferenceContext* c) -> Status {
      c->set_output(0, c->input(0));
      int grad;
      TF_RETURN_IF_ERROR(c->GetAttr("grad", &grad));
      ShapeHandle b;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &b));
      c->set_output(1, grad > 0 ? b : c->Vector(0));
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
db: grad > 0 with a bias: y summed over every axis but `axis` (the gradient of
    b), else empty.
)doc");

}  // namespace stylegan2
