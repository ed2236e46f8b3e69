"""State the passes of one ipex.optimize() call share."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from torch import nn

from ..dataflow.flow import DataFlow
from .options import Options


@dataclass
class CodeEdit:
    """A fusion that needs the code of `owner` (a qualified name) rewritten: `layer` (qualified
    name) takes `post_op`; `kind` is "activation" or "residual"; `scopes` are the qualified
    names of the modules whose code holds the nodes involved."""
    owner: str
    layer: str
    kind: str
    post_op: tuple
    scopes: frozenset = frozenset()


@dataclass
class Context:
    opts: Options
    folded: Dict[int, nn.Module] = field(default_factory=dict)  # id(layer) -> its FoldedBatchNorm
    edits: List[CodeEdit] = field(default_factory=list)
    claimed: set = field(default_factory=set)  # ids of layers an edit will give a post-op
    batch_independent: bool = False  # see tile_batches.check
    reference: Any = None  # the original's output on sample_input (see verify_sample)
    mismatch: Optional[float] = None  # set when the optimized model fails that check
    finished: Optional[Any] = None  # set by a pass whose result ends the pipeline (graph mode)
    _flow: Optional[DataFlow] = None

    def has_flow(self):
        return self._flow is not None

    def flow(self, model):
        """The data flow of model's forward, traced on first use (after dropout removal)."""
        if self._flow is None:
            self._flow = DataFlow(model)
            self._flow.warn_left_alone()
        return self._flow


def replace_everywhere(model, old, new):
    """Registers `new` wherever `old` is registered in model (a module can be shared)."""
    for path, m in list(model.named_modules(remove_duplicate=False)):
        if m is old and path:
            parent, _, name = path.rpartition(".")
            model.get_submodule(parent)._modules[name] = new
