// Registration and shape function of StyleGAN2>Upfirdn2d.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace stylegan2 {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

// Output length of one spatial axis: (in * up + pad0 + pad1 - taps) / down + 1.
Status AxisOutputDim(InferenceContext* c, DimensionHandle in, DimensionHandle taps, int up,
                     int down, int pad0, int pad1, DimensionHandle* out) {
  if (!c->ValueKnown(in) || !c->ValueKnown(taps)) {
    *out = c->UnknownDim();
    return Status();
  }
  const int64_t span = c->Value(in) * up + pad0 + pad1 - c->Value(taps);
  if (span < 0) {
    return tensorflow::errors::InvalidArgument(
        "upfirdn2d output would be empty: input length ", c->Value(in), " * up ", up,
        " + padding ", pad0, " + ", pad1, " is shorter than the filter (", c->Value(taps),
        " taps)");
  }
  *out = c->MakeDim(span / down + 1);
  return Status();
}

}  // namespace

REGISTER_OP("StyleGAN2>Upfirdn2d")
    .Input("x: T")
    .Input("f: float")
    .Output("y: T")
    .Attr("T: {float, half}")
    .Attr("up_x: int >= 1 = 1")
    .Attr("up_y: int >= 1 = 1")
    .Attr("down_x: int >= 1 = 1")
    .Attr("down_y: int >= 1 = 1")
    .Attr("pad_x0: int = 0")
    .Attr("pad_x1: int = 0")
    .Attr("pad_y0: int = 0")
    .Attr("pad_y1: int = 0")
    .Attr("flip_filter: bool = false")
    .Attr("gain: float = 1.0")
    .SetShapeFn([](InferenceContext* c) -> Status {
      ShapeHandle x, f;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &f));
      int up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1;
      TF_RETURN_IF_ERROR(c->GetAttr("up_x", &up_x));
      TF_RETURN_IF_ERROR(c->GetAttr("up_y", &up_y));
      TF_RETURN_IF_ERROR(c->GetAttr("down_x", &down_x));
      TF_RETURN_IF_ERROR(c->GetAttr("down_y", &down_y));
      TF_RETURN_IF_ERROR(c->GetAttr("pad_x0", &pad_x0));
      TF_RETURN_IF_ERROR(c->GetAttr("pad_x1", &pad_x1));
      TF_RETURN_IF_ERROR(c->GetAttr("pad_y0", &pad_y0));
      TF_RETURN_IF_ERROR(c->GetAttr("pad_y1", &pad_y1));
      DimensionHandle out_h, out_w;
      TF_RETURN_IF_ERROR(AxisOutputDim(c, c->Dim(x, 1), c->Dim(f, 0), up_y, down_y, pad_y0,
                                       pad_y1, &out_h));
      TF_RETURN_IF_ERROR(AxisOutputDim(c, c->Dim(x, 2), c->Dim(f, 1), up_x, down_x, pad_x0,
                                       pad_x1, &out_w));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), out_h, out_w, c->Dim(x, 3)}));
      return Status();
    })
    .Doc(R"doc(
Upsamples, pads, FIR-filters and downsamples a batch of NHWC images.

x: [N, H, W, C] images.
f: [filter_h, filter_w] float32 FIR filter (use a 1-row or 1-column filter per
   pass for separable filtering).
y: [N, out_h, out_w, C], out = (in * up + pad0 + pad1 - taps) / down + 1.
)doc");

}  // namespace stylegan2
