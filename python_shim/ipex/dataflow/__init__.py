"""Data-flow analysis of a model's forward (torch.fx) for ipex.optimize()'s rewrite passes."""
