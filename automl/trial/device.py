"""Choosing where a trial trains: the GPU Ray assigned it, else the CPU with matched threads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cuda" or "cpu"
    amp: bool
    threads: int


def select_device(gpus: float, cpus: float, amp: bool) -> DevicePlan:
    """CUDA when the trial was given a GPU share and one is visible, else CPU.

    On CPU, torch's intra-op threads are set to the trial's CPU count so concurrent trials do not
    oversubscribe the cores. AMP is used only on CUDA.
    """
    import torch

    threads = max(1, int(cpus))
    if gpus > 0:
        if not torch.cuda.is_available():
            raise RuntimeError(f"the trial was given {gpus:g} GPU but CUDA is not available in "
                               "this worker (CUDA_VISIBLE_DEVICES or the torch build)")
        torch.set_num_threads(threads)
        return DevicePlan("cuda", amp, threads)
    torch.set_num_threads(threads)
    return DevicePlan("cpu", False, threads)
