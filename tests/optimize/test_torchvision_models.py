"""Every torchvision 0.14 family through ipex.optimize() with default options: random weights,
random batch-norm statistics; float32 within 1e-4 of eager, bf16 within 5e-2 of float32 eager.
The default run takes one or two models per family; IPEX_MODEL_SWEEP=1 adds the rest."""
import pytest
import torch
from torch import nn

from optimize_testutil import BF16_TOL, FP32_TOL, optimize, randomize_batch_norms, rel_err, run

tv = pytest.importorskip("torchvision")
models = tv.models

# name -> (constructor, input shape, part compared: None = the whole output)
CLASSIFICATION = {
    "resnet18": (lambda: models.resnet18(num_classes=10), (2, 3, 64, 64)),
    "densenet121": (lambda: models.densenet121(num_classes=10), (1, 3, 48, 48)),
    "mobilenet_v3_small": (lambda: models.mobilenet_v3_small(num_classes=10), (2, 3, 64, 64)),
    "googlenet": (lambda: models.googlenet(num_classes=10, aux_logits=False, init_weights=False), (1, 3, 64, 64)),
    "vit": (lambda: models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                             mlp_dim=64, num_classes=10), (2, 3, 32, 32)),
}
SWEEP = {
    "resnext50_32x4d": (lambda: models.resnext50_32x4d(num_classes=10), (1, 3, 64, 64)),
    "wide_resnet50_2": (lambda: models.wide_resnet50_2(num_classes=10), (1, 3, 48, 48)),
    "densenet201": (lambda: models.densenet201(num_classes=10), (1, 3, 48, 48)),
    "mobilenet_v2": (lambda: models.mobilenet_v2(num_classes=10), (2, 3, 64, 64)),
    "mobilenet_v3_large": (lambda: models.mobilenet_v3_large(num_classes=10), (1, 3, 64, 64)),
    "efficientnet_b0": (lambda: models.efficientnet_b0(num_classes=10), (1, 3, 64, 64)),
    "efficientnet_v2_s": (lambda: models.efficientnet_v2_s(num_classes=10), (1, 3, 64, 64)),
    "regnet_x_400mf": (lambda: models.regnet_x_400mf(num_classes=10), (1, 3, 64, 64)),
    "regnet_y_400mf": (lambda: models.regnet_y_400mf(num_classes=10), (1, 3, 64, 64)),
    "shufflenet_v2_x0_5": (lambda: models.shufflenet_v2_x0_5(num_classes=10), (2, 3, 64, 64)),
    "squeezenet1_1": (lambda: models.squeezenet1_1(num_classes=10), (1, 3, 64, 64)),
    "inception_v3": (lambda: models.inception_v3(num_classes=10, aux_logits=False, init_weights=False),
                     (1, 3, 96, 96)),
    "mnasnet0_5": (lambda: models.mnasnet0_5(num_classes=10), (1, 3, 64, 64)),
    "convnext_tiny": (lambda: models.convnext_tiny(num_classes=10), (1, 3, 64, 64)),
    "swin_t": (lambda: models.swin_t(num_classes=10), (1, 3, 64, 64)),
    "alexnet": (lambda: models.alexnet(num_classes=10), (1, 3, 64, 64)),
    "vgg11_bn": (lambda: models.vgg11_bn(num_classes=10), (1, 3, 32, 32)),
    "deeplabv3_mobilenet_v3_large": (lambda: models.segmentation.deeplabv3_mobilenet_v3_large(
        num_classes=4, weights_backbone=None), (1, 3, 64, 64)),
    "fcn_resnet50": (lambda: models.segmentation.fcn_resnet50(num_classes=4, weights_backbone=None),
                     (1, 3, 64, 64)),
    "r2plus1d_18": (lambda: models.video.r2plus1d_18(num_classes=5), (1, 3, 4, 32, 32)),
    "mc3_18": (lambda: models.video.mc3_18(num_classes=5), (1, 3, 4, 32, 32)),
    "s3d": (lambda: models.video.s3d(num_classes=5), (1, 3, 16, 224, 224)),
}
DEFAULT = dict(CLASSIFICATION, **{
    "lraspp_mobilenet_v3_large": (lambda: models.segmentation.lraspp_mobilenet_v3_large(
        num_classes=4, weights_backbone=None), (1, 3, 64, 64)),
    "r3d_18": (lambda: models.video.r3d_18(num_classes=5), (1, 3, 4, 32, 32)),
})


def build(make):
    torch.manual_seed(0)
    model = make()
    with torch.no_grad():
        for m in model.modules():  # zero-initialised heads (ViT) would hide every error
            if isinstance(m, nn.Linear) and not m.weight.any():
                m.weight.normal_(0, 0.1)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
    return randomize_batch_norms(model).eval()


def check(make, shape):
    model = build(make)
    x = torch.randn(*shape)
    ref = run(model, x)
    opt = optimize(model)
    assert rel_err(run(opt, x), ref) <= FP32_TOL
    opt16 = optimize(model, dtype=torch.bfloat16)
    try:
        run(model, x, bf16=True)
    except RuntimeError:  # stock autocast fails (torch 1.13's fused attention): the optimized one may too
        return
    assert rel_err(run(opt16, x, bf16=True), ref) <= BF16_TOL
    assert list(opt.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("name", sorted(DEFAULT))
def test_model(name):
    check(*DEFAULT[name])


@pytest.mark.model_sweep
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_model_sweep(name):
    check(*SWEEP[name])


DETECTION = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": lambda: models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        num_classes=3, weights_backbone=None),
    "ssdlite320_mobilenet_v3_large": lambda: models.detection.ssdlite320_mobilenet_v3_large(
        num_classes=3, weights_backbone=None),
    "retinanet_resnet50_fpn": lambda: models.detection.retinanet_resnet50_fpn(num_classes=3, weights_backbone=None),
    "maskrcnn_resnet50_fpn": lambda: models.detection.maskrcnn_resnet50_fpn(num_classes=3, weights_backbone=None),
}


def _features(model, x):
    """Backbone features and head outputs: the detector's final boxes go through score
    thresholds and NMS, where random weights make near-ties that rounding reorders."""
    with torch.no_grad():
        feats = model.backbone(x)
        out = [feats]
        if hasattr(model, "head"):
            out.append(model.head(list(feats.values()) if isinstance(feats, dict) else [feats]))
        if hasattr(model, "rpn"):
            out.append(model.rpn.head(list(feats.values())))
    return out


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn",
                                  pytest.param("ssdlite320_mobilenet_v3_large", marks=pytest.mark.model_sweep),
                                  pytest.param("retinanet_resnet50_fpn", marks=pytest.mark.model_sweep),
                                  pytest.param("maskrcnn_resnet50_fpn", marks=pytest.mark.model_sweep)])
def test_detection(name):
    model = build(DETECTION[name])
    x = torch.randn(1, 3, 96, 96)
    with pytest.warns(UserWarning, match="could not trace"):  # the detector's own control flow
        opt = optimize(model)
    assert rel_err(_features(opt, x), _features(model, x)) <= FP32_TOL
    with torch.no_grad():
        out = opt([x[0]])  # the whole detector runs
    assert set(out[0]) == set(model([x[0]])[0])
    assert list(opt.state_dict()) == list(model.state_dict())
