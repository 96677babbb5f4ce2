"""What a newcomer's first mistakes are told: each error names the fix."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import fastsample


def test_three_dimensional_logits_point_at_the_last_position():
    with pytest.raises(ValueError, match=r"logits\[:, -1, :\]"):
        fastsample.sample(torch.randn(2, 3, 10))


def test_a_batched_prompt_tensor_is_told_to_drop_its_batch_dimension():
    sampler = fastsample.Sampler(10)
    with pytest.raises(TypeError, match=r"input_ids\[0\]"):
        sampler.add("a", fastsample.SamplingParams(), torch.tensor([[1, 2, 3]]))
    sampler.add("a", fastsample.SamplingParams(), torch.tensor([[1, 2, 3]])[0])
    assert sampler.request_ids == ["a"]


@pytest.mark.parametrize("where", ["Sampler.add", "generate", "SamplingBatch"])
def test_a_dict_of_parameters_is_told_how_to_become_sampling_params(where):
    d = {"temperature": 0.5}
    with pytest.raises(TypeError, match=r"SamplingParams\(\*\*d\).*from_openai"):
        if where == "Sampler.add":
            fastsample.Sampler(10).add("a", d, [1])
        elif where == "generate":
            fastsample.generate(None, [[1, 2]], d)
        else:
            fastsample.SamplingBatch([d], vocab_size=10)


def test_a_misspelled_field_names_the_nearest_ones():
    with pytest.raises(TypeError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        fastsample.SamplingParams(temprature=0.5)
    with pytest.raises(TypeError, match=r"'top_pp' \(did you mean 'top_p'"):
        fastsample.SamplingParams(top_pp=0.5, top_k=3)


def test_zero_dimensional_tensors_are_scalars():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    scalar = dict(temperature=0.7, top_k=5, top_p=0.8, min_p=0.01, seed=3, offset=2)
    as_tensors = {k: torch.tensor(v) for k, v in scalar.items()}
    assert torch.equal(fastsample.sample(logits, **as_tensors), fastsample.sample(logits, **scalar))
    assert torch.equal(fastsample.process_logits(logits, **as_tensors),
                       fastsample.process_logits(logits, **scalar))


def test_numpy_integers_are_sizes_and_values():
    sampler = fastsample.Sampler(np.int64(10))
    assert sampler.vocab_size == 10
    logits = torch.randn(2, 10)
    assert torch.equal(fastsample.sample(logits, top_k=np.int64(1)), logits.argmax(-1))


def test_import_without_torch_says_to_install_it(tmp_path):
    # A torch that cannot be imported, first on the path.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')")
    code = "import fastsample"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": f"{tmp_path}:{':'.join(sys.path)}"})
    assert proc.returncode != 0
    assert "fastsample needs PyTorch" in proc.stderr and "install torch first" in proc.stderr
