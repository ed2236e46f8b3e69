"""LayerNorm/GroupNorm that compute in float32 whatever their input's dtype.

Under torch 1.13's CPU autocast a bf16 activation (from a bf16 linear/conv) reaching a stock
LayerNorm or GroupNorm with float32 weights fails ("expected scalar type BFloat16 but found
Float"); these read the input as float32 and return float32, as autocast's float32 ops do.
Same attributes and state-dict keys as the stock classes; TorchScript-compatible."""
import torch.nn.functional as F
from torch import nn


class Float32LayerNorm(nn.LayerNorm):
    def forward(self, input):
        return F.layer_norm(input.float(), self.normalized_shape, self.weight, self.bias, self.eps)


class Float32GroupNorm(nn.GroupNorm):
    def forward(self, input):
        return F.group_norm(input.float(), self.num_groups, self.weight, self.bias, self.eps)


FLOAT32_NORMS = {nn.LayerNorm: Float32LayerNorm, nn.GroupNorm: Float32GroupNorm}
