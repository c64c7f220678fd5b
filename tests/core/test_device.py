"""Device names: what ``--device`` and the experiment's ``training.device`` accept."""

import pytest
import torch

from app.core.training.device import resolve_device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_and_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "xla", "meta", ""])
def test_unknown_names_list_the_valid_ones(spec):
    with pytest.raises(ValueError, match=f"device {spec!r} is not known; valid: auto, cpu, cuda, cuda:N or mps"):
        resolve_device(spec)


@pytest.mark.parametrize("spec, message", [("cuda", "sees no CUDA GPU"), ("cuda:1", "sees no CUDA GPU"),
                                           ("mps", "Metal backend is not available")])
def test_hardware_that_is_not_there_is_refused_with_advice(no_gpu, spec, message):
    with pytest.raises(RuntimeError, match=message):
        resolve_device(spec)


def test_cpu_entry_says_whether_it_computes_bfloat16(monkeypatch):
    from app.core.training import precision
    from app.core.training.device import available_devices

    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: True)
    assert available_devices()[-1].description.endswith("threads, native bfloat16)")
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: False)
    assert available_devices()[-1].description.endswith("threads)")


def test_one_cpu_thread_is_said_in_the_singular(monkeypatch):
    import torch

    from app.core.training import precision
    from app.core.training.device import available_devices

    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert available_devices()[-1].description == "CPU (1 thread)"  # was "CPU (1 threads)"
