"""Training: Muon and the baseline's optimizer groups, the lr schedule, the challenge's clock,
distributed set-up, checkpoints and the training loop (research/pg_core.md §4.3-4.6, §5.4)."""
from .checkpoint import find_checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from .clock import TrainClock
from .distributed import DistEnv, all_reduce, any_rank, barrier, init_distributed, is_distributed
from .loop import TrainProgress, TrainResult, configure_optimizers, grad_accum_steps, train
from .muon import Muon, zeropower_via_newtonschulz5
from .optim import CONTROL_TENSOR_PATTERNS, OptimizerSet, build_optimizers, control_patterns, route_parameters
from .rng import capture_rng_state, restore_rng_state, seed_everything
from .schedule import LRSchedule, MomentumWarmup, budget_seconds, lr_mul

__all__ = [
    "CONTROL_TENSOR_PATTERNS", "DistEnv", "LRSchedule", "MomentumWarmup", "Muon", "OptimizerSet", "TrainClock",
    "TrainProgress", "TrainResult", "all_reduce", "any_rank", "barrier", "budget_seconds", "build_optimizers",
    "capture_rng_state", "configure_optimizers", "control_patterns", "find_checkpoint", "grad_accum_steps",
    "init_distributed", "is_distributed", "latest_checkpoint", "load_checkpoint", "lr_mul", "restore_rng_state",
    "route_parameters", "save_checkpoint", "seed_everything", "train", "zeropower_via_newtonschulz5",
]
