import threading
import warnings

import pytest
import torch

import ipex


def test_conv_softmax_equals_eager_on_every_pool(rt, model, model_as, two_cpus):
    target = model_as
    a, b = two_cpus
    for cpus, streams in (([a], 1), ([b], 1), ([a, b], 1), ([a, b], 2), ([b, a], "AUTO")):
        msm = rt.MultiStreamModule(target, num_streams=streams, cpu_pool=rt.CPUPool(cpus))
        assert msm.get_stream_number() == (len(cpus) if streams == "AUTO" else streams)
        for batch in (1, 2, 3, 5):
            x = torch.randn(batch, 3, 10, 10)
            with torch.no_grad():
                assert torch.allclose(msm(x), model(x), atol=1e-6), (cpus, streams, batch)


def test_uneven_small_and_empty_batches(rt, model, two_cpus):
    msm = rt.MultiStreamModule(model, num_streams=2, cpu_pool=rt.CPUPool(two_cpus), concat_output=False)
    with torch.no_grad():
        assert [o.shape[0] for o in msm(torch.randn(3, 3, 6, 6))] == [2, 1]
        assert [o.shape[0] for o in msm(torch.randn(1, 3, 6, 6))] == [1]
        assert [o.shape[0] for o in msm(torch.randn(0, 3, 6, 6))] == [0]
    joined = rt.MultiStreamModule(model, num_streams=2, cpu_pool=rt.CPUPool(two_cpus))
    with torch.no_grad():
        assert joined(torch.randn(0, 3, 6, 6)).shape == (0, 8, 6, 6)
    assert ipex._C.split_sizes(4, 3) == [2, 1, 1]
    assert ipex._C.split_sizes(2, 3) == [1, 1]


def nested(x, pair, d, scale, flag=None):
    a = x * scale + pair[0]
    b = pair[1].sum(0, keepdim=True)
    return a, {"y": d["y"] * 2, "t": [d["t"] + 1]}, b, flag


def test_nested_tuple_list_dict_hints_and_kwargs(rt, two_cpus):
    H = rt.MultiStreamModuleHint
    x, p0, p1 = torch.randn(5, 4), torch.randn(5, 4), torch.randn(3, 5)
    d = {"y": torch.randn(5), "t": torch.randn(2, 5)}
    scale = torch.randn(4)
    msm = rt.MultiStreamModule(
        nested, num_streams=2, cpu_pool=rt.CPUPool(two_cpus),
        input_split_hint=H(0, (0, 1), {"y": 0, "t": 1}, None, flag=None),
        # b is a partial sum per stream: joined along dim 1 it is the whole sum.
        output_concat_hint=H(0, {"y": 0, "t": [1]}, 1, None))
    a, dd, b, flag = msm(x, [p0, p1], d, scale, flag="kept")
    assert torch.allclose(a, x * scale + p0)
    assert torch.allclose(dd["y"], d["y"] * 2)
    assert isinstance(dd["t"], list) and torch.allclose(dd["t"][0], d["t"] + 1)
    assert torch.allclose(b, p1.sum(0, keepdim=True))
    assert flag == "kept"


def test_dict_output_by_keyword_hint(rt, two_cpus):
    H = rt.MultiStreamModuleHint
    msm = rt.MultiStreamModule(lambda x: {"double": x * 2, "first": x[:1]}, num_streams=2,
                               cpu_pool=rt.CPUPool(two_cpus), output_concat_hint=H(double=0, first=None))
    x = torch.arange(6.0).reshape(3, 2)
    out = msm(x)
    assert torch.equal(out["double"], x * 2)
    assert torch.equal(out["first"], x[:1])  # stream 0's


def test_all_none_hints_run_whole_on_one_stream(rt, two_cpus):
    H = rt.MultiStreamModuleHint
    msm = rt.MultiStreamModule(lambda x, y: x + y, num_streams=2, cpu_pool=rt.CPUPool(two_cpus),
                               input_split_hint=H(None, None), concat_output=False)
    x = torch.randn(4, 3)
    out = msm(x, x)
    assert len(out) == 1 and torch.equal(out[0], x + x)


def test_embedding_bag_split_rebases_offsets(rt, two_cpus):
    torch.manual_seed(1)
    bag = torch.nn.EmbeddingBag(20, 6, mode="sum").eval()
    indices = torch.tensor([1, 5, 7, 2, 2, 9, 0, 3, 19, 4])
    offsets = torch.tensor([0, 3, 3, 5, 9])  # bags of 3, 0, 2, 4, 1
    parts = rt.embedding_bag_split((indices, offsets), {}, 2)
    assert [p[0][1].tolist() for p in parts] == [[0, 3, 3], [0, 4]]
    assert parts[1][0][0].tolist() == [9, 0, 3, 19, 4]
    with torch.no_grad():
        expected = bag(indices, offsets)
        for cpus in ([two_cpus[0]], two_cpus):
            for streams in range(1, len(cpus) + 1):
                msm = rt.MultiStreamModule(bag, num_streams=streams, cpu_pool=rt.CPUPool(cpus),
                                           split_fn=rt.embedding_bag_split)
                assert torch.allclose(msm(indices, offsets), expected)
        scripted = torch.jit.trace(bag, (indices, offsets))
        msm = rt.MultiStreamModule(scripted, num_streams=2, cpu_pool=rt.CPUPool(two_cpus),
                                   split_fn=rt.embedding_bag_split)
        assert torch.allclose(msm(indices, offsets), expected)


def test_custom_concat_function(rt, two_cpus):
    msm = rt.MultiStreamModule(lambda x: x.sum(0), num_streams=2, cpu_pool=rt.CPUPool(two_cpus),
                               concat_fn=lambda outs: sum(outs))
    x = torch.randn(5, 3)
    assert torch.allclose(msm(x), x.sum(0))


def test_forward_from_several_threads(rt, model, two_cpus):
    scripted = torch.jit.script(model)
    msm = rt.MultiStreamModule(scripted, num_streams=2, cpu_pool=rt.CPUPool(two_cpus))
    bad = []

    def call(seed):
        g = torch.Generator().manual_seed(seed)
        for i in range(10):
            x = torch.randn(1 + (seed + i) % 4, 3, 8, 8, generator=g)
            with torch.no_grad():
                if not torch.allclose(msm(x), model(x), atol=1e-6):
                    bad.append((seed, i))

    threads = [threading.Thread(target=call, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_stream_count_checks(rt, model, two_cpus):
    pool = rt.CPUPool(two_cpus)
    assert rt.get_default_num_streams(pool) == 2
    assert rt.MultiStreamModule(model, num_streams="auto", cpu_pool=pool).get_stream_number() == 2
    with pytest.raises(ValueError, match="AUTO"):
        rt.MultiStreamModule(model, num_streams="many", cpu_pool=pool)
    with pytest.raises(ValueError, match="at least 1"):
        rt.MultiStreamModule(model, num_streams=0, cpu_pool=pool)
    with pytest.raises(TypeError):
        rt.MultiStreamModule(model, num_streams=True, cpu_pool=pool)
    with pytest.raises(TypeError, match="CPUPool"):
        rt.MultiStreamModule(model, cpu_pool=two_cpus)
    with pytest.raises(TypeError, match="MultiStreamModuleHint"):
        rt.MultiStreamModule(model, cpu_pool=pool, input_split_hint=0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert rt.MultiStreamModule(model, num_streams=3, cpu_pool=pool).get_stream_number() == 2
    assert any("using 2 streams" in str(x.message) for x in w)


def test_split_errors_are_one_line_value_errors(rt, two_cpus):
    H = rt.MultiStreamModuleHint
    pool = rt.CPUPool(two_cpus)
    add = rt.MultiStreamModule(lambda a, b: a + b, num_streams=2, cpu_pool=pool)
    with pytest.raises(ValueError, match="disagree"):
        add(torch.ones(4), torch.ones(3))
    with pytest.raises(ValueError, match="type int"):
        add(torch.ones(4), 3)
    two = rt.MultiStreamModule(lambda a, b: a, num_streams=2, cpu_pool=pool, input_split_hint=H(0, 0, 0))
    with pytest.raises(ValueError, match="3 positional entries for 2"):
        two(torch.ones(4), torch.ones(4))
    dim = rt.MultiStreamModule(lambda a: a, num_streams=2, cpu_pool=pool, input_split_hint=H(3))
    with pytest.raises(ValueError, match="out of range"):
        dim(torch.ones(4))
    with pytest.raises(ValueError, match="out of range"):
        add(torch.tensor(1.0), torch.tensor(2.0))  # 0-dim tensors cannot be split
