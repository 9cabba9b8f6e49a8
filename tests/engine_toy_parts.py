"""Importable pieces for engine tests (LazyConfig targets must be importable)."""

import torch
from torch import nn


class ToyViTLike(nn.Module):
    """Two 'blocks' plus a head, exposing the ViT hooks the optimiser builder looks for."""

    num_layers = 2

    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4))
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.norm = nn.LayerNorm(4)

    def get_layer_id(self, name: str) -> int:
        if name.startswith("pos_embed"):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.num_layers + 1

    def no_weight_decay(self):
        return {"pos_embed"}

    def forward(self, x):
        x = x + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


class ToyRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ToyViTLike()
        self.head = nn.Linear(4, 1)

    def forward(self, batch):
        x = torch.stack([d["x"] for d in batch])
        y = torch.stack([d["y"] for d in batch])
        return {"loss_mse": ((self.head(self.backbone(x)).squeeze(1) - y) ** 2).mean()}


def toy_loader(batch_size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    while True:
        x = torch.randn(batch_size, 4, generator=g)
        yield [{"x": xi, "y": (xi * w).sum()} for xi in x]
