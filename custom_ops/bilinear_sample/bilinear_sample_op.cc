// Registration and shape functions of StyleGAN2>BilinearSample and its adjoint.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace stylegan2 {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

// Checks positions ix, iy (inputs 1 and 2): rank 3, the same shape, batch `batch`.
Status PositionsShape(InferenceContext* c, DimensionHandle batch, ShapeHandle* positions) {
  ShapeHandle ix, iy;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 3, &ix));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 3, &iy));
  TF_RETURN_IF_ERROR(c->Merge(ix, iy, positions));
  DimensionHandle merged;
  return c->Merge(c->Dim(*positions, 0), batch, &merged);
}

}  // namespace

REGISTER_OP("StyleGAN2>BilinearSample")
    .Input("x: T")
    .Input("ix: P")
    .Input("iy: P")
    .Output("y: T")
    .Attr("T: {float, double}")
    .Attr("P: {float, double}")
    .SetShapeFn([](InferenceContext* c) -> Status {
      ShapeHandle x, positions;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(PositionsShape(c, c->Dim(x, 0), &positions));
      c->set_output(0, c->MakeShape({c->Dim(positions, 0), c->Dim(positions, 1),
                                     c->Dim(positions, 2), c->Dim(x, 3)}));
      return Status();
    })
    .Doc(R"doc(
Samples images at pixel positions with bilinear weights, zeros outside the image.

x: [N, H, W, C] images; pixel (x, y) holds x[n, y, x, :].
ix: [N, Ho, Wo] horizontal positions in pixels.
iy: [N, Ho, Wo] vertical positions in pixels.
y: [N, Ho, Wo, C].
)doc");

REGISTER_OP("StyleGAN2>BilinearSampleAdjoint")
    .Input("dy: T")
    .Input("ix: P")
    .Input("iy: P")
    .Input("image_size: int32")
    .Output("dx: T")
    .Attr("T: {float, double}")
    .Attr("P: {float, double}")
    .SetShapeFn([](InferenceContext* c) -> Status {
      ShapeHandle dy, positions, size;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &dy));
      TF_RETURN_IF_ERROR(PositionsShape(c, c->Dim(dy, 0), &positions));
      DimensionHandle merged;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(dy, 1), c->Dim(positions, 1), &merged));
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(dy, 2), c->Dim(positions, 2), &merged));
      TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(3, &size));
      TF_RETURN_IF_ERROR(c->WithRank(size, 2, &size));
      c->set_output(0, c->MakeShape({c->Dim(dy, 0), c->Dim(size, 0), c->Dim(size, 1),
                                     c->Dim(dy, 3)}));
      return Status();
    })
    .Doc(R"doc(
The adjoint of BilinearSample: scatters dy back to the pixels each position read,
with the same weights (the gradient of BilinearSample with respect to x).

dy: [N, Ho, Wo, C].
ix: [N, Ho, Wo] horizontal positions in pixels.
iy: [N, Ho, Wo] vertical positions in pixels.
image_size: [2] int32, (H, W) of the images.
dx: [N, H, W, C].
)doc");

}  // namespace stylegan2
