"""ipex.optimize()'s passes, in the order they run. Each module has applies(ctx) (whether its
option asks for it) and run(model, ctx) -> model."""
from . import (float32_norms, fold_batchnorm, fold_weights, free_layouts, fuse_activation, fuse_residual_add,
               graph_mode, prepack, replace_dropout, rewrite_code, tile_batches, verify_sample)

PIPELINE = (
    replace_dropout,     # replace_dropout_with_identity
    fold_batchnorm,      # conv_bn_folding / linear_bn_folding: which batch norms fold (data flow)
    float32_norms,       # dtype bfloat16: LayerNorm/GroupNorm compute in float32 under autocast
    graph_mode,          # graph_mode: a faithful frozen trace ends the pipeline here
    prepack,             # weights_prepack: packed oneDNN layers, folded batch norms taken in
    fold_weights,        # folded layers not prepacked: stock layers with folded weights
    fuse_activation,     # weights_prepack: activation post-ops
    fuse_residual_add,   # weights_prepack: residual add (+ activation) post-ops
    rewrite_code,        # the code changes those fusions need (rewritten forwards)
    free_layouts,        # weights_prepack: convolutions whose output layout no code sees keep the kernels'
    tile_batches,        # batch_tiling
    verify_sample,       # sample_input: packs for its shapes, checks float32 results
)
