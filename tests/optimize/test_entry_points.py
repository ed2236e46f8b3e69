"""Which layers a method other than forward may call (dataflow.entry_points), read from
the methods' bytecode."""
import torch
from torch import nn

from ipex.dataflow.entry_points import EVERYTHING, exposed_modules, other_entry_points


class Parts(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
        self.head = nn.Conv2d(3, 3, 1)
        self.extra = None
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.head(self.body(x)) * self.scale

    def inference(self, x):  # through forward only
        with torch.no_grad():
            return self(x)

    def embed(self, x):  # body as a whole
        return self.body(x)

    def first(self, x):  # inside body
        return self.body[0](x)

    def has_extra(self):  # compares, calls nothing
        return self.extra is not None

    def reset(self):  # sets parameters and plain attributes only
        self.scale = nn.Parameter(torch.ones(1))
        self.calls = 0

    @staticmethod
    def make(i, o):
        return nn.Conv2d(i, o, 1)

    def closure(self, x):  # self captured by a nested function, used through attributes
        def run():
            return self.head(x)
        return run()

    def _private(self, x):  # not an entry point of its own
        return self.head(x)

    def via_private(self, x):
        return self._private(x)


def test_what_each_method_reaches():
    found = other_entry_points(Parts())
    assert set(found) == {"embed", "first", "closure", "via_private"}
    assert found["embed"] == {("body",): "call"}
    assert found["first"] == {("body",): "inside"}
    assert found["closure"] == {("head",): "call"} == found["via_private"]


class GivesAway(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x)

    def visit(self, fn):
        return fn(self)

    def each(self):
        return [m for m in self.children()]


def test_self_given_away_reaches_everything():
    found = other_entry_points(GivesAway())
    assert found == {"visit": EVERYTHING, "each": EVERYTHING}


def test_exposed_modules_are_those_reached():
    model = Parts()
    exposed = exposed_modules(model)
    assert id(model.body) in exposed and id(model.body[0]) in exposed and id(model.body[1]) in exposed
    assert id(model.head) in exposed and exposed[id(model.head)] in ("Parts.closure()", "Parts.via_private()")
    assert id(model) not in exposed


def test_torch_classes_are_no_entry_points():
    assert exposed_modules(nn.Sequential(nn.Conv2d(3, 3, 1), nn.ModuleList([nn.Linear(2, 2)]))) == {}
