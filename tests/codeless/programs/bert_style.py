"""A BERT-style model: Embedding -> LayerNorm -> TransformerEncoder -> pooler/classifier."""
import torch
from torch import nn

import record


class TinyBert(nn.Module):
    def __init__(self, vocab=100, width=32, heads=4, layers=2, length=16):
        super().__init__()
        self.words = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(length, width)
        self.norm = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.1, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.pooler = nn.Linear(width, width)
        self.classifier = nn.Linear(width, 2)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.norm(self.words(ids) + self.positions(positions))
        x = self.encoder(x)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


torch.manual_seed(0)
model = TinyBert().eval()
ids = torch.randint(0, 100, (3, 16))
results = {}
with torch.no_grad():
    results["answers"] = [model(ids), model(ids), model(ids[:, :9]), model(ids)]
results["facts"] = record.model_facts(model)
record.save(results)
