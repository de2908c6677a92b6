"""ZeRO stage 1: every rank keeps AdamW's moments for its own shard of the parameters only.

The gradients must already be averaged (DataParallel). Each rank steps the parameters it owns, then each
parameter is broadcast from its owner, so all copies stay identical while the optimizer state per rank is
about 1/world_size of the whole.

Checkpoints hold the full state in plain AdamW's layout: `full_state_dict()` gathers the shards on one rank
(every rank calls it), and `load_state_dict()` accepts such a dict (from a sharded run or from plain AdamW, on any
number of ranks) and keeps this rank's shard only.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def assign_owners(params: list[torch.Tensor], world_size: int) -> list[int]:
    """The rank that owns each parameter: greedily the rank with the fewest elements so far (balanced shards)."""
    loads = [0] * world_size
    owners = []
    for p in params:
        rank = min(range(world_size), key=lambda r: loads[r])
        owners.append(rank)
        loads[rank] += p.numel()
    return owners


class ShardedAdamW(torch.optim.Optimizer):
    """AdamW over parameter groups like torch.optim.AdamW, but the state is sharded over the ranks.

    Set the learning rate in `param_groups` as usual; `step` passes it on to this rank's AdamW.
    """

    def __init__(self, params, group=None, **adamw_kwargs):
        defaults = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], **adamw_kwargs).defaults
        super().__init__(params, defaults)
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.all_params = [p for g in self.param_groups for p in g["params"]]
        owners = assign_owners(self.all_params, self.world_size)
        self.owner = {id(p): r for p, r in zip(self.all_params, owners)}
        self._local_groups = []  # (index in param_groups, this rank's group) for groups with a parameter here
        for index, g in enumerate(self.param_groups):
            mine = [p for p in g["params"] if self.owner[id(p)] == self.rank]
            if mine:
                self._local_groups.append((index, {**{k: v for k, v in g.items() if k != "params"}, "params": mine}))
        local = [g for _, g in self._local_groups] or [{"params": [torch.zeros(1, requires_grad=True)]}]
        self.local = torch.optim.AdamW(local, **adamw_kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for (index, _), local_group in zip(self._local_groups, self.local.param_groups):
            for key, value in self.param_groups[index].items():
                if key != "params":
                    local_group[key] = value  # e.g. the learning rate of a schedule
        if self._local_groups:
            self.local.step()
        for p in self.all_params:  # the owner's updated values to every rank
            dist.broadcast(p.data, src=self._global_rank(self.owner[id(p)]), group=self.group)
        return loss

    def _global_rank(self, group_rank: int) -> int:
        return group_rank if self.group is None else dist.get_global_rank(self.group, group_rank)

    def state_dict(self):
        raise RuntimeError("ShardedAdamW holds only this rank's shard of the state: call full_state_dict(dst) on "
                           "every rank to gather plain AdamW's state_dict on rank dst")

    def full_state_dict(self, dst: int = 0) -> dict | None:
        """Plain AdamW's state_dict() of the whole model, gathered on rank `dst` (None on the other ranks).

        Collective: every rank must call it. The state entries are numbered like AdamW's, the parameters in
        param_groups order; each rank's shard travels to `dst` on the CPU.
        """
        index = {id(p): i for i, p in enumerate(self.all_params)}
        shard = {index[id(p)]: {k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v)
                                for k, v in s.items()}
                 for p, s in self.local.state.items() if id(p) in index}
        shards = [None] * self.world_size if self.rank == dst else None
        dist.gather_object(shard, shards, dst=self._global_rank(dst), group=self.group)
        if self.rank != dst:
            return None
        state = {i: entry for received in shards for i, entry in received.items()}
        groups, start = [], 0
        for g in self.param_groups:
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + len(g["params"])))})
            start += len(g["params"])
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load plain AdamW's (or full_state_dict's) layout: hyperparameters for every group, state for this
        rank's shard only."""
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved optimizer state has parameter groups of other sizes than this model's")
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        if not self._local_groups:
            return
        index = {id(p): i for i, p in enumerate(self.all_params)}
        local_state, local_groups, local_index = {}, [], 0
        for group_index, local_group in self._local_groups:
            numbers = []
            for p in local_group["params"]:
                if index[id(p)] in state_dict["state"]:
                    local_state[local_index] = state_dict["state"][index[id(p)]]
                numbers.append(local_index)
                local_index += 1
            hyper = {k: v for k, v in self.param_groups[group_index].items() if k != "params"}
            local_groups.append({**hyper, "params": numbers})
        self.local.load_state_dict({"state": local_state, "param_groups": local_groups})

    def state_bytes(self) -> int:
        """Bytes of optimizer state held on this rank (AdamW's moments and step counters)."""
        return sum(t.numel() * t.element_size() for s in self.local.state.values() for t in s.values()
                   if isinstance(t, torch.Tensor))
